#!/bin/sh
set -e
# As in the official image: when the first argument is a flag, it is nats-server's.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- nats-server "$@"
fi
exec "$@"

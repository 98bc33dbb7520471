# Developer recipes; each wraps the atrium CLI so there is one way to do a thing.
default:
    @just --list

up *ARGS:
    ./atrium up {{ARGS}}

dev:
    ./atrium up --dev

test *ARGS:
    ./atrium test {{ARGS}}

lint:
    .venv/bin/ruff check contracts services gateway infra tests bench
    .venv/bin/mypy contracts services/kit gateway --ignore-missing-imports

fmt:
    .venv/bin/ruff format contracts services gateway infra tests bench
    .venv/bin/ruff check --fix contracts services gateway infra tests bench

migrate:
    ./atrium migrate

seed:
    ./atrium seed

bench:
    for b in bench/bench_*.py; do .venv/bin/python -m bench.$(basename $b .py); done

# compose.yaml under podman, checked end to end (slow: builds the images)
compose-test *ARGS:
    ./atrium compose-test {{ARGS}}

"""Permissions use cases as plain `(command, ctx, deps)` functions, one module per concern:
`registry` (the apps that announced themselves), `access` (the check and default grants), `grants`
(a user's own grants) and `groups`. Every change writes an audit row and enqueues
`events.permissions.changed` in the same transaction (`common.record_change`)."""

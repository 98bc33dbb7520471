"""Auth use cases as plain `(command, ctx, deps)` functions, one module per concern: `accounts`
(registration, the account, its email address), `sessions` (sign-in, refresh, sign-out, devices),
`recovery` (passwords: change, forgot, reset), `admin` (an administrator's view of every account) and
`housekeeping`; `common` holds what they share, `links` the single-use links sent by mail."""

"""The identity service: accounts, sessions, tokens, recovery, administration, audit.

How the pieces fit (details in each module):

- `tokens` / `keys`: RS256 access tokens (kid, iat, nbf, exp, sub, role, sid, aud, typ, iss; 15 min)
  signed with the newest 4096-bit key under `<data>/keys/auth/`; every live key is published as JWKS
  (`auth.keys.jwks`, `/.well-known/jwks.json`). Other services verify with `services.kit.security`.
- Refresh tokens: 64 random bytes, only SHA-256 stored on the session row. Every refresh rotates;
  the rotated hash goes to `refresh_history`, so presenting any old token again is detected as
  reuse and ends the session. Racing refreshes serialise on the session row (`SELECT … FOR UPDATE`
  matching `refresh_hash` or `previous_hash`): the winner rotates and stores the successor
  AES-GCM-encrypted under a key derived from the presented token (`successor_enc`); a loser that
  presents that same token within `refresh_grace_s` (5 s, `ATRIUM_REFRESH_GRACE_S`) decrypts it and gets the same successor.
  The database alone cannot produce a usable refresh token.
- Revocation everywhere: ending a session writes `session.<sid>` and a role/active change writes
  `user.<id>` to the `auth_state` KV bucket that every verifier watches (`state.AuthState`). Ending all
  of a user's sessions also sets `tokens_valid_after` to the current whole second; verifiers refuse
  tokens from earlier seconds, and same-second tokens of ended sessions by their `session.<sid>`.
- `policy` (ASVS password rules), `ratelimit` (sliding windows per IP and per account), `mailer`
  (dev outbox or SMTP), `admin` (`atrium admin create`, the `new_admin` test fixture), `handlers`
  (the use cases, each writing its audit rows in its own transaction).
"""

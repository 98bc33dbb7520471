"""Documents use cases as plain functions `(command, ctx, deps)`, one module per concern (no transport here).

- `common`: the dependencies (`DocsDeps`), the caller's access check, audit, progress, ownership.
- `views`: rows as the public models.
- `uploads`: upload limits and quotas, recording an upload.
- `runs`: queueing a run of the pipeline (first upload, re-process, an administrator's replay).
- `documents`: listing, counts, detail, edits and category suggestions.
- `files`: download, page previews, deletion with the stored files.
- `categories`, `tasks`, `bulk`: what their names say.
- `pipeline`: the workers' events (`on_*`) and the order of a run's statuses.
- `housekeeping`: the outbox relay and task retention (background loops).
- `search`: the list statement, built without a database (filters, sorts, cursor, counts, snippets).

Every query is scoped by the verified caller: another user's document, category or task is `NotFound`.
"""

"""JetStream streams. Domain events are stored here; a stream is declared idempotently at start-up."""

from .base import Stream

AUTH_STREAM = Stream(
    "AUTH", ("events.auth.>",), summary="Identity facts: registrations, role and state changes"
)
PERMISSIONS_STREAM = Stream(
    "PERMISSIONS", ("events.permissions.>", "events.apps.>"), summary="Grant changes and app manifests"
)
PROFILE_STREAM = Stream("PROFILE", ("events.profile.>",), summary="Profile facts")
DOCUMENTS_STREAM = Stream(
    "DOCUMENTS", ("events.docs.>",), summary="Document pipeline: uploaded, extracted, analyzed, failed"
)
OPS_STREAM = Stream("OPS", ("events.ops.>",), summary="Operations: a stack restored from a backup")

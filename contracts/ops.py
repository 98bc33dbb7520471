"""Operations facts (`events.ops.*`), published by the `atrium` CLI as the operator.

`events.ops.restored`: `atrium restore` rebuilt this stack from a backup (infra/backup.py). The database
is as of `database_at` (when the backup's dump began), the JetStream streams, buckets and files from a
little later, so the services that keep state in both reconcile them: the documents service re-runs what
was unfinished at `database_at` and drops documents whose file was deleted while the backup ran.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from .base import Contract, Event
from .streams import OPS_STREAM


class StackRestored(Contract):
    backup_id: UUID
    backup_created_at: datetime
    database_at: datetime  # when the backup's PostgreSQL dump began: the restored database is as of then
    restored_at: datetime


STACK_RESTORED = Event(
    "events.ops.restored",
    StackRestored,
    stream=OPS_STREAM.name,
    summary="The stack was rebuilt from a backup; services reconcile their database with its files",
)

"""The service's background work: forgetting old tasks and removing cut-off uploads (app.py's loops), forgetting a deleted user
(`events.auth.user_deleted`), and reconciling the database with the stored files after the stack was restored
from a backup (`events.ops.restored`). The kit's outbox relays and prunes the outbox itself
(services/kit/outbox.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Literal

from sqlalchemy import delete, select

from contracts import Header
from contracts.auth import UserDeleted
from contracts.documents import DocumentStatus, SettingsChanged
from contracts.ops import StackRestored
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.logging import log_fields

from ..access import as_system
from ..tables import audit_log, categories, documents, tasks
from .common import DocsDeps, now
from .directory import forget_account
from .files import remove_document, remove_for_service
from .pipeline import TERMINAL_TASK
from .runs import resume_run
from .uploads import upload_lock

UNFINISHED: tuple[DocumentStatus, ...] = ("queued", "extracting", "ocr", "analyzing")
# A restore whose object store lacks the originals of more documents than this is not a few deletions
# that raced the backup but a broken store: nothing is deleted then, and the error is logged.
MAX_REMOVED_AFTER_RESTORE = (20, 0.05)  # documents, share of all

FORGET_BATCH = 50  # documents removed per transaction when a user is deleted
CHECK_BATCH = 1000  # upload names looked up in the documents per statement by the orphan sweep

log = logging.getLogger("atrium.docs")


async def apply_retention(deps: DocsDeps) -> int:
    """Delete finished tasks older than the retention setting (`task_retention_days`)."""
    cutoff = now() - timedelta(days=deps.settings().task_retention_days)
    async with as_system(deps.db, "retention") as s:
        gone = await s.execute(
            delete(tasks).where(tasks.c.created_at < cutoff, tasks.c.status.in_(TERMINAL_TASK))
        )
    removed = int(getattr(gone, "rowcount", 0) or 0)
    if removed:
        log_fields(log, logging.INFO, "old tasks removed", count=removed)
    return removed


async def sweep_cut_off_uploads(deps: DocsDeps, *, older_than_s: float) -> int:
    """Remove what uploads cut off mid-way left in the object store (the gateway died while a file was
    arriving: part of it is stored, never finished, never a document), and the whole files no document
    records (it died after storing a file, before asking for its document). app.py's loop."""
    swept = await deps.blobs.sweep_cut_off(older_than_s)
    if swept:
        log_fields(log, logging.INFO, "cut-off uploads removed from the object store", count=swept)
    return swept + await sweep_orphan_uploads(deps, older_than_s=older_than_s)


async def sweep_orphan_uploads(deps: DocsDeps, *, older_than_s: float) -> int:
    """Delete the uploaded files stored longer ago than `older_than_s` that no document records. Each under
    its upload lock, checked again inside it: a document being created for it right now (the lock held)
    keeps it for the next sweep, and a create after the deletion finds no file (NotFound: upload again).

    A sweep costs what is new since the last one: it reads only the store's changes since then (the meta
    entries after its mark; all of them once, when the process starts) and keeps the uploads seen there in
    `waiting` until they are old enough; each is then checked against the documents once, in batches of
    CHECK_BATCH names (an index probe each)."""
    sweep = deps.upload_sweep
    seen, mark, restarted = await deps.blobs.uploads_stored_after(sweep.mark)
    waiting = {} if restarted else dict(sweep.waiting)
    for upload in seen:
        if upload.deleted or upload.stored_at is None:  # gone, or a time that cannot be read: never old
            waiting.pop(upload.name, None)
        else:
            waiting[upload.name] = upload.stored_at
    cutoff = now() - timedelta(seconds=older_than_s)
    old = sorted(name for name, at in waiting.items() if at < cutoff)
    d = documents.c
    swept = 0
    for start in range(0, len(old), CHECK_BATCH):
        batch = old[start : start + CHECK_BATCH]
        async with as_system(deps.db, "retention", write=False) as s:
            recorded = set((await s.execute(select(d.object_name).where(d.object_name.in_(batch)))).scalars())
        for name in batch:
            outcome = "recorded" if name in recorded else await _sweep_one(deps, name)
            if outcome == "busy":
                continue  # its document is being created now: looked at again next time
            del waiting[name]
            swept += outcome == "deleted"
    # Only now, all of it done: a failure above leaves the mark and the waiting uploads as they were.
    sweep.mark, sweep.waiting = mark, waiting
    if swept:
        log_fields(log, logging.INFO, "uploaded files no document records removed", count=swept)
    return swept


async def _sweep_one(deps: DocsDeps, name: str) -> Literal["busy", "recorded", "deleted"]:
    """Delete one upload no document recorded a moment ago, under its lock, if none records it now."""
    async with as_system(deps.db, "retention") as s:
        if not (await s.execute(upload_lock(name, wait=False))).scalar():
            return "busy"
        if (
            await s.execute(select(documents.c.id).where(documents.c.object_name == name))
        ).first() is not None:
            return "recorded"
        await deps.blobs.delete(name)
    return "deleted"


async def resume_after_restore(event: StackRestored, ctx: Ctx, deps: DocsDeps) -> None:
    """The stack was rebuilt from a backup (`events.ops.restored`, infra/backup.py): the database is as of
    the backup's dump, the files from a little later. A document whose original is gone was deleted while
    the backup ran: it goes now, as its owner asked. A document still being processed at the dump is run
    again (its pipeline events may be past it in the restored streams). A document changed since the restore
    was handled by an earlier delivery of this event and is left alone."""
    names = await deps.blobs.names()
    async with as_system(deps.db, "restore", write=False) as s:
        rows = (
            await s.execute(
                select(documents.c.id, documents.c.object_name, documents.c.status, documents.c.updated_at)
            )
        ).all()
    rows = [r for r in rows if r.updated_at <= event.restored_at]
    missing = [r.id for r in rows if r.object_name not in names]
    limit, share = MAX_REMOVED_AFTER_RESTORE
    if len(missing) > max(limit, share * len(rows)):
        log_fields(
            log,
            logging.ERROR,
            "after the restore, the originals of many documents are missing from the store; none removed",
            missing=len(missing),
            documents=len(rows),
            backup_id=str(event.backup_id),
        )
        missing = []
    gone = set(missing)
    resumed = 0
    for doc_id in missing:
        await remove_for_service(doc_id, ctx, deps, audit_action="document.removed_after_restore")
    for r in rows:
        if r.id in gone or r.status not in UNFINISHED:
            continue
        if await resume_run(r.id, ctx, deps, audit_action="document.resumed_after_restore"):
            resumed += 1
    log_fields(
        log,
        logging.INFO,
        "stack restored: database reconciled with the stored files",
        backup_id=str(event.backup_id),
        removed=len(missing),
        resumed=resumed,
        documents=len(rows),
    )


async def forget_user(event: UserDeleted, ctx: Ctx, deps: DocsDeps) -> None:
    """A deleted user's documents go, with every file of every run (original, results, previews) and their
    text; then their categories and task history, the shares made to them and their directory entry (the
    shares and links they made go with their documents and categories). Idempotent: a redelivery finds less
    to delete. The service's own path past row-level security (`forget_user`)."""
    owner = event.user_id
    removed = 0
    while True:
        async with as_system(deps.db, "forget_user") as s:
            rows = (
                await s.execute(
                    select(documents)
                    .where(documents.c.owner_id == owner)
                    .limit(FORGET_BATCH)
                    .with_for_update()
                )
            ).all()
            for row in rows:
                await remove_document(s, row, deps)
        for row in rows:
            await deps.mark_superseded(row.run_id, "deleted")
        removed += len(rows)
        if len(rows) < FORGET_BATCH:
            break
        if ctx.heartbeat is not None:  # a user with many documents takes a while: keep the message ours
            await ctx.heartbeat()
    async with as_system(deps.db, "forget_user") as s:
        await s.execute(delete(categories).where(categories.c.owner_id == owner))  # links, shares cascade
        await s.execute(delete(tasks).where(tasks.c.owner_id == owner))
        await forget_account(s, owner)
        await record_audit(s, audit_log, ctx, "user.forgotten", target_id=owner, documents=removed)
    log_fields(log, logging.INFO, "deleted user's documents removed", user_id=str(owner), documents=removed)


async def record_settings_change(event: SettingsChanged, ctx: Ctx, deps: DocsDeps) -> None:
    """The ai service changed the Documents settings: an audit entry with the actor and their address."""
    at = Ctx(request_id=ctx.request_id, headers={Header.CLIENT_IP: event.client_ip or ""})
    async with deps.db.transaction() as s:
        await record_audit(
            s,
            audit_log,
            at,
            "settings.changed",
            actor_id=event.actor_id,
            changed=event.changed,
            provider=event.provider,
            model=event.model,
            base_url=event.base_url,
            revision=event.revision,
        )

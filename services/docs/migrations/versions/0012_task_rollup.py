"""task history at 1,000,000 rows: indexes for every filter of the task list (keyset order, status, filename
substring by trigram), and per-day rollups of the tasks (counts, durations, tokens; a duration histogram)
kept by triggers, so the statistics never scan the tasks (services/docs/handlers/tasks.py, bench/bench_tasks.py)

Revision ID: 0012_task_rollup
Revises: 0011
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import UUID

revision = "0012_task_rollup"
down_revision = "0011"
branch_labels = None
depends_on = None

S = "docs"

# The rollups' row for everyone's tasks (an administrator's statistics) has this owner.
EVERYONE = "00000000-0000-0000-0000-000000000000"
# Duration buckets 10 % wide (services/docs/handlers/tasks.py DURATION_BUCKET_RATIO): bucket 0 holds 0 ms,
# bucket b >= 1 the durations in [1.1^(b-1), 1.1^b) ms.
BUCKET = f"CREATE FUNCTION {S}.duration_bucket(ms integer) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN ms <= 0 THEN 0 ELSE 1 + floor(ln(ms) / ln(1.1))::int END::smallint $$"

SYSTEM = f"(SELECT {S}.system_access())"
ME = f"(SELECT {S}.acting_user())"
ADMIN = f"(SELECT {S}.acting_admin())"
# Only the triggers on `tasks` write the rollups (whoever changed the task: its owner, an editor it is shared
# with, the pipeline), so a write is allowed inside a trigger; reading follows the tasks: one's own,
# everyone's to an administrator.
ROLLUP_POLICIES = {
    "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR pg_trigger_depth() > 0", None),
    "INSERT": (None, f"{SYSTEM} OR pg_trigger_depth() > 0"),
    "UPDATE": (f"{SYSTEM} OR pg_trigger_depth() > 0", f"{SYSTEM} OR pg_trigger_depth() > 0"),
    "DELETE": (f"{SYSTEM} OR pg_trigger_depth() > 0", None),
}

# A change to `tasks` as signed rows: +1 per new row, -1 per old row (an update is both).
_COLUMNS = "owner_id, created_at, status, kind, provider, model, duration_ms, tokens_in, tokens_out"
DELTAS = {
    "insert": f"SELECT {_COLUMNS}, 1 AS n FROM new_rows",
    "delete": f"SELECT {_COLUMNS}, -1 AS n FROM old_rows",
    "update": f"SELECT {_COLUMNS}, 1 AS n FROM new_rows UNION ALL SELECT {_COLUMNS}, -1 AS n FROM old_rows",
}


def _apply(delta: str) -> str:
    """The statements adding a delta to both rollups, for the owner and for everyone; rows in key order, so
    concurrent changes lock them in the same order."""
    scoped = (
        f"WITH delta AS ({delta}), scoped AS ("
        f" SELECT owner_id, (created_at AT TIME ZONE 'UTC')::date AS day, status, kind,"
        f" coalesce(provider, '') AS provider, coalesce(model, '') AS model, duration_ms, tokens_in, tokens_out, n"
        f" FROM delta UNION ALL"
        f" SELECT '{EVERYONE}'::uuid, (created_at AT TIME ZONE 'UTC')::date, status, kind,"
        f" coalesce(provider, ''), coalesce(model, ''), duration_ms, tokens_in, tokens_out, n FROM delta)"
    )
    rollup = (
        f"{scoped} INSERT INTO {S}.task_rollup AS r"
        " (owner_id, day, status, kind, provider, model, tasks, timed, duration_ms, tokens_in, tokens_out)"
        " SELECT owner_id, day, status, kind, provider, model, sum(n),"
        " coalesce(sum(n) FILTER (WHERE duration_ms IS NOT NULL), 0), coalesce(sum(n * duration_ms::bigint), 0),"
        " coalesce(sum(n * tokens_in::bigint), 0), coalesce(sum(n * tokens_out::bigint), 0)"
        " FROM scoped GROUP BY owner_id, day, status, kind, provider, model"
        " HAVING sum(n) <> 0 OR coalesce(sum(n) FILTER (WHERE duration_ms IS NOT NULL), 0) <> 0"
        " OR coalesce(sum(n * duration_ms::bigint), 0) <> 0 OR coalesce(sum(n * tokens_in::bigint), 0) <> 0"
        " OR coalesce(sum(n * tokens_out::bigint), 0) <> 0"
        " ORDER BY owner_id, day, status, kind, provider, model"
        " ON CONFLICT (owner_id, day, status, kind, provider, model) DO UPDATE SET"
        " tasks = r.tasks + excluded.tasks, timed = r.timed + excluded.timed,"
        " duration_ms = r.duration_ms + excluded.duration_ms, tokens_in = r.tokens_in + excluded.tokens_in,"
        " tokens_out = r.tokens_out + excluded.tokens_out"
    )
    durations = (
        f"{scoped} INSERT INTO {S}.task_durations AS h (owner_id, day, bucket, tasks)"
        f" SELECT owner_id, day, {S}.duration_bucket(duration_ms), sum(n) FROM scoped"
        " WHERE duration_ms IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"
        " ON CONFLICT (owner_id, day, bucket) DO UPDATE SET tasks = h.tasks + excluded.tasks"
    )
    # A deletion (retention, a forgotten user) leaves no empty row behind for the days it touched.
    touched = (
        f"(owner_id, day) IN (SELECT o, (created_at AT TIME ZONE 'UTC')::date FROM ({delta}) d,"
        f" LATERAL (VALUES (d.owner_id), ('{EVERYONE}'::uuid)) AS w(o))"
    )
    emptied = (
        f"DELETE FROM {S}.task_rollup WHERE tasks = 0 AND timed = 0 AND duration_ms = 0 AND tokens_in = 0"
        f" AND tokens_out = 0 AND {touched}; DELETE FROM {S}.task_durations WHERE tasks = 0 AND {touched}"
    )
    return f"{rollup}; {durations}; {emptied if delta == DELTAS['delete'] else 'NULL'};"


def upgrade() -> None:
    bind = op.get_bind()
    # pg_trgm (trigram indexes) is created by provisioning, as the database superuser, like btree_gin.
    for ext in ("btree_gin", "pg_trgm"):
        if bind.execute(text("select 1 from pg_extension where extname = :e"), {"e": ext}).first() is None:
            raise RuntimeError(
                f"The PostgreSQL extension {ext} is missing: run the provisioning "
                "(infra/embedded.py provision, as the database superuser) before migrating."
            )

    # The list: newest first by (created_at, id) for a user, by status, and for everyone; a filename
    # substring through trigrams of the owner's filenames (GIN, btree_gin for the owner).
    op.create_index(
        "ix_tasks_owner_status_created", "tasks", ["owner_id", "status", "created_at", "id"], schema=S
    )
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_created_id", "tasks", ["created_at", "id"], schema=S)
    op.drop_index("ix_tasks_created", "tasks", schema=S)
    op.execute(
        f"CREATE INDEX ix_tasks_owner_filename_trgm ON {S}.tasks USING gin (owner_id, filename public.gin_trgm_ops)"
    )

    for name, bucket in (("task_rollup", False), ("task_durations", True)):
        keys = ["bucket"] if bucket else ["status", "kind", "provider", "model"]
        columns: list[Any] = [
            sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
        ]
        if bucket:
            columns += [sa.Column("bucket", sa.SmallInteger(), nullable=False)]
        else:
            columns += [
                sa.Column("status", sa.String(16), nullable=False),
                sa.Column("kind", sa.String(16), nullable=False),
                sa.Column("provider", sa.String(40), nullable=False),
                sa.Column("model", sa.String(200), nullable=False),
            ]
        columns += [sa.Column("tasks", sa.BigInteger(), nullable=False)]
        if not bucket:
            columns += [
                sa.Column(c, sa.BigInteger(), nullable=False)
                for c in ("timed", "duration_ms", "tokens_in", "tokens_out")
            ]
        op.create_table(
            name, *columns, sa.PrimaryKeyConstraint("owner_id", "day", *keys, name=f"pk_{name}"), schema=S
        )
        op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
        for command, (using, check) in ROLLUP_POLICIES.items():
            sql = f"CREATE POLICY {name}_{command.lower()} ON {S}.{name} FOR {command}"
            sql += f" USING ({using})" if using else ""
            sql += f" WITH CHECK ({check})" if check else ""
            op.execute(sql)

    op.execute(BUCKET)
    for event, delta in DELTAS.items():
        op.execute(
            f"CREATE FUNCTION {S}.tasks_rollup_{event}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {_apply(delta)} RETURN NULL; END $$"
        )
    # Per statement, over its transition tables: a bulk insert adds its aggregate, not a row at a time.
    op.execute(
        f"CREATE TRIGGER tasks_rollup_insert AFTER INSERT ON {S}.tasks REFERENCING NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {S}.tasks_rollup_insert()"
    )
    op.execute(
        f"CREATE TRIGGER tasks_rollup_update AFTER UPDATE ON {S}.tasks"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {S}.tasks_rollup_update()"
    )
    op.execute(
        f"CREATE TRIGGER tasks_rollup_delete AFTER DELETE ON {S}.tasks REFERENCING OLD TABLE AS old_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {S}.tasks_rollup_delete()"
    )
    # The tasks so far, read as a background path past row-level security (this transaction only), added
    # with the triggers' own statements as one delta of every row.
    op.execute("SELECT set_config('atrium.system', 'migration', true)")
    op.execute(f"DO $$ BEGIN {_apply(f'SELECT {_COLUMNS}, 1 AS n FROM {S}.tasks')} END $$")
    op.execute("SELECT set_config('atrium.system', '', true)")


def downgrade() -> None:
    for event in DELTAS:
        op.execute(f"DROP TRIGGER tasks_rollup_{event} ON {S}.tasks")
        op.execute(f"DROP FUNCTION {S}.tasks_rollup_{event}()")
    op.drop_table("task_durations", schema=S)
    op.drop_table("task_rollup", schema=S)
    op.execute(f"DROP FUNCTION {S}.duration_bucket(integer)")
    op.execute(f"DROP INDEX {S}.ix_tasks_owner_filename_trgm")
    op.create_index("ix_tasks_created", "tasks", ["created_at"], schema=S)
    op.drop_index("ix_tasks_created_id", "tasks", schema=S)
    op.drop_index("ix_tasks_status_created", "tasks", schema=S)
    op.drop_index("ix_tasks_owner_status_created", "tasks", schema=S)

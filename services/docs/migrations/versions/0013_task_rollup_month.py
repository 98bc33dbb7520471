"""task statistics per month, and rollups written once per transaction at its commit: per-month rollups
(ranges of whole months read ~300 rows instead of a row per day), and the triggers on `tasks` no longer lock
the shared rollup rows (everyone's, per day and month) statement by statement: each statement's change is
staged in `task_rollup_pending`, and a deferred trigger folds a transaction's staged changes into the four
rollups at its commit, in one key order — writers hold those locks only while committing, and two
transactions cannot deadlock on them (services/docs/handlers/tasks.py, tests/integration/test_task_history.py)

Revision ID: 0013_task_rollup_month
Revises: 0012_task_rollup
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0013_task_rollup_month"
down_revision = "0012_task_rollup"
branch_labels = None
depends_on = None

S = "docs"
EVERYONE = "00000000-0000-0000-0000-000000000000"  # the rollups' owner of everyone's tasks (migration 0012)

SYSTEM = f"(SELECT {S}.system_access())"
ME = f"(SELECT {S}.acting_user())"
ADMIN = f"(SELECT {S}.acting_admin())"
IN_TRIGGER = "pg_trigger_depth() > 0"
WRITES = {
    "INSERT": (None, f"{SYSTEM} OR {IN_TRIGGER}"),
    "UPDATE": (f"{SYSTEM} OR {IN_TRIGGER}", f"{SYSTEM} OR {IN_TRIGGER}"),
    "DELETE": (f"{SYSTEM} OR {IN_TRIGGER}", None),
}
# The month rollups are read like the day rollups (one's own, everyone's to an administrator); the staged
# changes and the transactions to fold only by the triggers.
POLICIES = {
    "task_rollup_month": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {IN_TRIGGER}", None),
        **WRITES,
    },
    "task_durations_month": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {IN_TRIGGER}", None),
        **WRITES,
    },
    "task_rollup_pending": {"SELECT": (f"{SYSTEM} OR {IN_TRIGGER}", None), **WRITES},
    "task_rollup_folds": {"SELECT": (f"{SYSTEM} OR {IN_TRIGGER}", None), **WRITES},
}

KEYS = ("status", "kind", "provider", "model")
SUMS = ("tasks", "timed", "duration_ms", "tokens_in", "tokens_out")

# A change to `tasks` as signed rows: +1 per new row, -1 per old row (an update is both).
_COLUMNS = "owner_id, created_at, status, kind, provider, model, duration_ms, tokens_in, tokens_out"
DELTAS = {
    "insert": f"SELECT {_COLUMNS}, 1 AS n FROM new_rows",
    "delete": f"SELECT {_COLUMNS}, -1 AS n FROM old_rows",
    "update": f"SELECT {_COLUMNS}, 1 AS n FROM new_rows UNION ALL SELECT {_COLUMNS}, -1 AS n FROM old_rows",
}
_NONZERO = " OR ".join(f"sum({c}) <> 0" for c in SUMS)


def _stage(delta: str) -> str:
    """A statement's change, summed per owner, UTC day, key and duration bucket, added to the transaction's
    staged rows (plain inserts: nothing shared is locked), and the transaction marked to fold at commit."""
    return (
        f"INSERT INTO {S}.task_rollup_pending (xid, owner_id, day, {', '.join(KEYS)}, bucket, {', '.join(SUMS)})"
        " SELECT txid_current(), owner_id, (created_at AT TIME ZONE 'UTC')::date, status, kind,"
        f" coalesce(provider, ''), coalesce(model, ''), {S}.duration_bucket(duration_ms), sum(n),"
        " coalesce(sum(n) FILTER (WHERE duration_ms IS NOT NULL), 0), coalesce(sum(n * duration_ms::bigint), 0),"
        " coalesce(sum(n * tokens_in::bigint), 0), coalesce(sum(n * tokens_out::bigint), 0)"
        f" FROM ({delta}) AS d GROUP BY 2, 3, 4, 5, 6, 7, 8"
        " HAVING sum(n) <> 0 OR coalesce(sum(n * duration_ms::bigint), 0) <> 0"
        " OR coalesce(sum(n * tokens_in::bigint), 0) <> 0 OR coalesce(sum(n * tokens_out::bigint), 0) <> 0;"
        f" INSERT INTO {S}.task_rollup_folds (xid) VALUES (txid_current()) ON CONFLICT DO NOTHING;"
    )


def _fold_into(table: str, period: str, keys: tuple[str, ...], sums: tuple[str, ...], where: str) -> str:
    """Add the transaction's staged rows to one rollup (for their owner and for everyone), rows in key
    order, then delete the rows it left all zero (only rows this statement just locked)."""
    staged = (
        f"WITH staged AS (SELECT owner_id, {period} AS period, {', '.join(keys)}, {', '.join(sums)}"
        f" FROM {S}.task_rollup_pending WHERE xid = me{where}),"
        " scoped AS (SELECT * FROM staged UNION ALL"
        f" SELECT '{EVERYONE}'::uuid, period, {', '.join(keys)}, {', '.join(sums)} FROM staged),"
        f" summed AS (SELECT owner_id, period, {', '.join(keys)}, {', '.join(f'sum({c}) AS {c}' for c in sums)}"
        f" FROM scoped GROUP BY owner_id, period, {', '.join(keys)}"
        f" HAVING {' OR '.join(f'sum({c}) <> 0' for c in sums)})"
    )
    pk = f"owner_id, {table_period(table)}, {', '.join(keys)}"
    upsert = (
        f"{staged} INSERT INTO {S}.{table} AS r ({pk}, {', '.join(sums)})"
        f" SELECT owner_id, period, {', '.join(keys)}, {', '.join(sums)} FROM summed"
        f" ORDER BY owner_id, period, {', '.join(keys)}"
        f" ON CONFLICT ({pk}) DO UPDATE SET {', '.join(f'{c} = r.{c} + excluded.{c}' for c in sums)};"
    )
    emptied = (
        f"{staged} DELETE FROM {S}.{table} AS r USING summed AS s"
        f" WHERE (r.owner_id, r.{table_period(table)}, {', '.join(f'r.{k}' for k in keys)})"
        f" = (s.owner_id, s.period, {', '.join(f's.{k}' for k in keys)})"
        f" AND {' AND '.join(f'r.{c} = 0' for c in sums)};"
    )
    return upsert + " " + emptied


def table_period(table: str) -> str:
    return "month" if table.endswith("_month") else "day"


MONTH = "date_trunc('month', day)::date"
FOLD = (
    f"CREATE FUNCTION {S}.tasks_rollup_fold() RETURNS trigger LANGUAGE plpgsql AS $$"
    " DECLARE me bigint := txid_current(); BEGIN"
    f" DELETE FROM {S}.task_rollup_folds WHERE xid = me;"
    # The same order in every transaction: day, month, then the durations; each in key order.
    + _fold_into("task_rollup", "day", KEYS, SUMS, "")
    + _fold_into("task_rollup_month", MONTH, KEYS, SUMS, "")
    + _fold_into("task_durations", "day", ("bucket",), ("tasks",), " AND bucket IS NOT NULL")
    + _fold_into("task_durations_month", MONTH, ("bucket",), ("tasks",), " AND bucket IS NOT NULL")
    + f" DELETE FROM {S}.task_rollup_pending WHERE xid = me; RETURN NULL; END $$"
)


def _policies(name: str) -> None:
    op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    for command, (using, check) in POLICIES[name].items():
        sql = f"CREATE POLICY {name}_{command.lower()} ON {S}.{name} FOR {command}"
        sql += f" USING ({using})" if using else ""
        sql += f" WITH CHECK ({check})" if check else ""
        op.execute(sql)


def _key_columns() -> list[Any]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
    ]


def _sum_columns() -> list[Any]:
    return [sa.Column(c, sa.BigInteger(), nullable=False) for c in SUMS]


def upgrade() -> None:
    owner = lambda: sa.Column("owner_id", UUID(as_uuid=True), nullable=False)  # noqa: E731
    op.create_table(
        "task_rollup_month",
        owner(),
        sa.Column("month", sa.Date(), nullable=False),
        *_key_columns(),
        *_sum_columns(),
        sa.PrimaryKeyConstraint("owner_id", "month", *KEYS, name="pk_task_rollup_month"),
        schema=S,
    )
    op.create_table(
        "task_durations_month",
        owner(),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "month", "bucket", name="pk_task_durations_month"),
        schema=S,
    )
    op.create_table(
        "task_rollup_pending",
        sa.Column("xid", sa.BigInteger(), nullable=False),
        owner(),
        sa.Column("day", sa.Date(), nullable=False),
        *_key_columns(),
        sa.Column("bucket", sa.SmallInteger(), nullable=True),
        *_sum_columns(),
        schema=S,
    )
    op.create_index("ix_task_rollup_pending_xid", "task_rollup_pending", ["xid"], schema=S)
    op.create_table(
        "task_rollup_folds",
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("xid", name="pk_task_rollup_folds"),
        schema=S,
    )
    for name in POLICIES:
        _policies(name)

    # The triggers of 0012 (which wrote the day rollups statement by statement) give way to staging; their
    # functions stay for the downgrade.
    for event, delta in DELTAS.items():
        op.execute(f"DROP TRIGGER tasks_rollup_{event} ON {S}.tasks")
        op.execute(
            f"CREATE FUNCTION {S}.tasks_rollup_stage_{event}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {_stage(delta)} RETURN NULL; END $$"
        )
    tables = {"insert": "NEW TABLE AS new_rows", "delete": "OLD TABLE AS old_rows"}
    tables["update"] = "OLD TABLE AS old_rows NEW TABLE AS new_rows"
    for event in DELTAS:
        op.execute(
            f"CREATE TRIGGER tasks_rollup_stage_{event} AFTER {event.upper()} ON {S}.tasks"
            f" REFERENCING {tables[event]} FOR EACH STATEMENT EXECUTE FUNCTION {S}.tasks_rollup_stage_{event}()"
        )
    op.execute(FOLD)
    # Once per transaction (its one row in task_rollup_folds), at its commit.
    op.execute(
        f"CREATE CONSTRAINT TRIGGER task_rollup_fold AFTER INSERT ON {S}.task_rollup_folds"
        f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {S}.tasks_rollup_fold()"
    )

    # The months so far, from the day rollups (as a background path past row-level security, this
    # transaction only); and no all-zero day row left behind (0012 left them after updates).
    op.execute("SELECT set_config('atrium.system', 'migration', true)")
    keys, sums = ", ".join(KEYS), ", ".join(SUMS)
    op.execute(
        f"INSERT INTO {S}.task_rollup_month (owner_id, month, {keys}, {sums})"
        f" SELECT owner_id, {MONTH}, {keys}, {', '.join(f'sum({c})' for c in SUMS)} FROM {S}.task_rollup"
        f" GROUP BY owner_id, {MONTH}, {keys} HAVING {_NONZERO}"
    )
    op.execute(
        f"INSERT INTO {S}.task_durations_month (owner_id, month, bucket, tasks)"
        f" SELECT owner_id, {MONTH}, bucket, sum(tasks) FROM {S}.task_durations"
        f" GROUP BY owner_id, {MONTH}, bucket HAVING sum(tasks) <> 0"
    )
    op.execute(f"DELETE FROM {S}.task_rollup WHERE {' AND '.join(f'{c} = 0' for c in SUMS)}")
    op.execute(f"DELETE FROM {S}.task_durations WHERE tasks = 0")
    op.execute("SELECT set_config('atrium.system', '', true)")


def downgrade() -> None:
    # Folds any change still staged by this transaction before the staging goes.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.execute(f"DROP TRIGGER task_rollup_fold ON {S}.task_rollup_folds")
    op.execute(f"DROP FUNCTION {S}.tasks_rollup_fold()")
    for event in DELTAS:
        op.execute(f"DROP TRIGGER tasks_rollup_stage_{event} ON {S}.tasks")
        op.execute(f"DROP FUNCTION {S}.tasks_rollup_stage_{event}()")
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
    for name in ("task_rollup_folds", "task_rollup_pending", "task_durations_month", "task_rollup_month"):
        op.drop_table(name, schema=S)

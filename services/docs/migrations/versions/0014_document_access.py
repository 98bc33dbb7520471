"""document access, materialised: a row per (share, document) it reaches — the document of a document's share,
every document its owner filed under the category of a category's share — kept by triggers on `shares` and
`document_categories` in the writing transaction (so a revoke, a role change or an unfiling holds at the next
statement); row-level security reads it with one index probe instead of two subqueries over shares and
filings, each with their own policies (which made the list's plan cost more than running it:
bench/bench_sharing.py)

Revision ID: 0014_document_access
Revises: 0013_task_rollup_month
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0014_document_access"
down_revision = "0013_task_rollup_month"
branch_labels = None
depends_on = None

S = "docs"

SYSTEM = f"(SELECT {S}.system_access())"
ME = f"(SELECT {S}.acting_user())"
ADMIN = f"(SELECT {S}.acting_admin())"
PRINCIPALS = f"CAST((SELECT {S}.acting_principals()) AS uuid[])"


def _shared(table: str, column: str, editors_only: bool = False) -> str:
    """A share reaching whoever acts (or a group of theirs) reaches this document: one probe of the
    (document, grantee) index."""
    role = " AND a.role = 'editor'" if editors_only else ""
    return (
        f"EXISTS (SELECT 1 FROM {S}.document_access a WHERE a.document_id = {table}.{column}"
        f" AND a.grantee_id = ANY ({PRINCIPALS}){role})"
    )


# (0011's, as they were: the downgrade puts them back.)
def _shared_0011(table: str, column: str, editors_only: bool = False) -> str:
    role = " AND s.role = 'editor'" if editors_only else ""
    named = f"s.grantee_id = ANY ({PRINCIPALS}){role}"
    document_id = f"{table}.{column}"
    return (
        f"{document_id} IN (SELECT s.document_id FROM {S}.shares s WHERE {named} AND s.document_id IS NOT NULL)"
        f" OR EXISTS (SELECT 1 FROM {S}.document_categories dc WHERE dc.document_id = {document_id}"
        f" AND dc.owner_id = {table}.owner_id AND dc.category_id IN (SELECT s.category_id FROM {S}.shares s"
        f" WHERE {named} AND s.category_id IS NOT NULL))"
    )


def _policies(sh: Callable[..., str]) -> dict[str, tuple[str, str | None, str | None]]:
    """The policies naming shared access: name -> (table, USING, WITH CHECK)."""
    editor_doc = sh("documents", "id", True)
    editor_task = sh("tasks", "document_id", True)
    return {
        "documents_select": (
            "documents",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {sh('documents', 'id')}",
            None,
        ),
        "documents_update": (
            "documents",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {editor_doc}",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {editor_doc}",
        ),
        "pages_select": (
            "pages",
            f"{SYSTEM} OR owner_id = {ME} OR {sh('pages', 'document_id')}",
            None,
        ),
        "tasks_select": (
            "tasks",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {sh('tasks', 'document_id')}",
            None,
        ),
        "tasks_insert": ("tasks", None, f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {editor_task}"),
        "tasks_update": (
            "tasks",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {editor_task}",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {editor_task}",
        ),
    }


# The triggers write and read past row-level security (an administrator's share of someone's category must
# reach the owner's filings, which the administrator may not read): they name themselves as the system for
# their own statements and put back what was set before.
ELEVATED = "was text := coalesce(current_setting('atrium.system', true), '');"
ELEVATE = "PERFORM set_config('atrium.system', 'document_access', true);"
RESTORE = "PERFORM set_config('atrium.system', was, true);"

# What a share reaches: its document, or its owner's documents filed under its category — only the owner's
# own documents either way (a sharee's filing of a shared document under a shared category of theirs does
# not pass it on).
REACHED = f"""
    INSERT INTO {S}.document_access (share_id, document_id, grantee_id, owner_id, role)
    SELECT NEW.id, d.id, NEW.grantee_id, d.owner_id, NEW.role FROM {S}.documents d
     WHERE d.id = NEW.document_id AND d.owner_id = NEW.owner_id
    UNION ALL
    SELECT NEW.id, d.id, NEW.grantee_id, d.owner_id, NEW.role
      FROM {S}.document_categories dc JOIN {S}.documents d ON d.id = dc.document_id AND d.owner_id = dc.owner_id
     WHERE dc.category_id = NEW.category_id AND dc.owner_id = NEW.owner_id
    ON CONFLICT DO NOTHING;"""

SHARE_TRIGGER = f"""
CREATE FUNCTION {S}.share_access() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE {ELEVATED}
BEGIN
  {ELEVATE}
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM {S}.document_access WHERE share_id = OLD.id;
  END IF;
  {REACHED}
  {RESTORE}
  RETURN NULL;
END $$"""

FILING_TRIGGER = f"""
CREATE FUNCTION {S}.filing_access() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE {ELEVATED}
BEGIN
  {ELEVATE}
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    DELETE FROM {S}.document_access a USING {S}.shares s
     WHERE a.share_id = s.id AND s.category_id = OLD.category_id AND a.document_id = OLD.document_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO {S}.document_access (share_id, document_id, grantee_id, owner_id, role)
    SELECT s.id, d.id, s.grantee_id, d.owner_id, s.role
      FROM {S}.shares s JOIN {S}.documents d ON d.id = NEW.document_id AND d.owner_id = s.owner_id
     WHERE s.category_id = NEW.category_id AND s.owner_id = NEW.owner_id
    ON CONFLICT DO NOTHING;
  END IF;
  {RESTORE}
  RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_table(
        "document_access",
        sa.Column(
            "share_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.shares.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "document_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("grantee_id", UUID(as_uuid=True), nullable=False),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        schema=S,
    )
    op.create_index(
        "ix_document_access_document",
        "document_access",
        ["document_id", "grantee_id"],
        postgresql_include=["role"],
        schema=S,
    )
    op.create_index(
        "ix_document_access_grantee",
        "document_access",
        ["grantee_id"],
        postgresql_include=["document_id", "owner_id", "role"],
        schema=S,
    )
    op.execute(f"ALTER TABLE {S}.document_access ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.document_access FORCE ROW LEVEL SECURITY")
    # Read by whom it reaches (and the owner, an administrator); written by the triggers alone.
    op.execute(
        f"CREATE POLICY document_access_select ON {S}.document_access FOR SELECT USING"
        f" ({SYSTEM} OR grantee_id = ANY ({PRINCIPALS}) OR owner_id = {ME} OR {ADMIN})"
    )
    for command in ("INSERT", "UPDATE", "DELETE"):
        with_check = f" WITH CHECK ({SYSTEM})" if command != "DELETE" else ""
        using_ = f" USING ({SYSTEM})" if command != "INSERT" else ""
        op.execute(
            f"CREATE POLICY document_access_{command.lower()} ON {S}.document_access FOR {command}"
            f"{using_}{with_check}"
        )
    op.execute(SHARE_TRIGGER)
    op.execute(FILING_TRIGGER)
    op.execute(
        f"CREATE TRIGGER share_access AFTER INSERT OR UPDATE ON {S}.shares"
        f" FOR EACH ROW EXECUTE FUNCTION {S}.share_access()"
    )
    op.execute(
        f"CREATE TRIGGER filing_access AFTER INSERT OR UPDATE OR DELETE ON {S}.document_categories"
        f" FOR EACH ROW EXECUTE FUNCTION {S}.filing_access()"
    )
    # What the shares reach now (the migration is the system for this one statement).
    op.execute("SELECT set_config('atrium.system', 'migration', true)")
    op.execute(
        f"INSERT INTO {S}.document_access (share_id, document_id, grantee_id, owner_id, role)"
        f" SELECT s.id, d.id, s.grantee_id, d.owner_id, s.role FROM {S}.shares s"
        f" JOIN {S}.documents d ON d.id = s.document_id AND d.owner_id = s.owner_id"
        f" UNION ALL SELECT s.id, d.id, s.grantee_id, d.owner_id, s.role FROM {S}.shares s"
        f" JOIN {S}.document_categories dc ON dc.category_id = s.category_id AND dc.owner_id = s.owner_id"
        f" JOIN {S}.documents d ON d.id = dc.document_id AND d.owner_id = dc.owner_id"
    )
    op.execute("SELECT set_config('atrium.system', '', true)")
    for name, (table, using, check) in _policies(_shared).items():
        _alter_policy(name, table, using, check)


def _alter_policy(name: str, table: str, using: str | None, check: str | None) -> None:
    sql = f"ALTER POLICY {name} ON {S}.{table}"
    if using:
        sql += f" USING ({using})"
    if check:
        sql += f" WITH CHECK ({check})"
    op.execute(sql)


def downgrade() -> None:
    for name, (table, using, check) in _policies(_shared_0011).items():
        _alter_policy(name, table, using, check)
    op.execute(f"DROP TRIGGER filing_access ON {S}.document_categories")
    op.execute(f"DROP TRIGGER share_access ON {S}.shares")
    op.execute(f"DROP FUNCTION {S}.filing_access()")
    op.execute(f"DROP FUNCTION {S}.share_access()")
    op.drop_table("document_access", schema=S)

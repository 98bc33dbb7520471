"""full-text vectors in a narrow side table (`document_search`), kept by triggers on `documents`

A documents row carried its text and two tsvectors inline (~4 KB, two rows per heap page), so every list that
read rows (the capped count, a filtered page, the newest matches to rank) read ~1 heap page per row. The vectors
move to `document_search` (with what a search filters and orders by: owner, upload time, type), their bytes
stored out of line, so its rows are ~100 bytes: a search's candidates, count and page are read from it, and a
documents row is ~1.2 KB once written anew (old rows: see the note below). Triggers on `documents` write it in
the writing transaction (every write path: upload, extraction results, re-runs, field edits), computed from
the same expressions as the generated columns were.

Revision ID: 0016_document_search
Revises: 0015_access_sort_keys
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID

revision = "0016_document_search"
down_revision = "0015_access_sort_keys"
branch_labels = None
depends_on = None

S = "docs"
SYSTEM = f"(SELECT {S}.system_access())"
ME = f"(SELECT {S}.acting_user())"
ADMIN = f"(SELECT {S}.acting_admin())"
PRINCIPALS = f"CAST((SELECT {S}.acting_principals()) AS uuid[])"


# Kept in step with services/docs/tables.py SEARCH_EXPRESSION / RANK_EXPRESSION (a migration must not import
# app code): `row` names the documents row ("NEW." in the trigger, "" for the columns themselves).
def _weighted(row: str, body_chars: int) -> str:
    return (
        f"setweight(to_tsvector('simple', coalesce({row}title, '')), 'A') || "
        f"setweight(to_tsvector('simple', coalesce({row}sender, '')), 'B') || "
        f"setweight(to_tsvector('simple', coalesce({row}filename, '')), 'B') || "
        f"setweight(to_tsvector('simple', left(coalesce({row}body_text, ''), {body_chars})), 'C')"
    )


def _readable(table: str, id_column: str) -> str:
    """Whoever acts may read the row of a document they own or that is shared with them: 0014's rule and form,
    a correlated EXISTS on `document_access`.

    (An uncorrelated IN — one hashed set of the documents shared with the caller per statement — was tried: the
    planner then charges that set's building (~450 cost units) to every inner scan of a nested loop, so a page's
    51 documents rows were fetched by a sequential scan of every document and a hash join instead of 51 probes,
    and the shared branch hash-joined every shared document before sorting them: 9 ms → 270 ms for "newest 50"
    at 100,000 documents, measured at merge.)"""
    return (
        f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR EXISTS (SELECT 1 FROM {S}.document_access a"
        f" WHERE a.document_id = {table}.{id_column} AND a.grantee_id = ANY ({PRINCIPALS}))"
    )


SEARCH_CHARS, RANK_CHARS = 200_000, 10_000
# What the vectors are made of, and what the side table copies: a change to any of them rewrites the row.
WATCHED = ("owner_id", "created_at", "document_type", "title", "sender", "filename", "body_text")

# The trigger writes past row-level security (an editor of a shared document changes its title; only the
# system writes `document_search`): it names itself as the system for its own statement, then puts back what
# was set before (as 0014's triggers do).
TRIGGER = f"""
CREATE FUNCTION {S}.document_search_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE was text := coalesce(current_setting('atrium.system', true), '');
BEGIN
  PERFORM set_config('atrium.system', 'document_search', true);
  INSERT INTO {S}.document_search (document_id, owner_id, created_at, document_type, search, rank_vector)
  VALUES (NEW.id, NEW.owner_id, NEW.created_at, NEW.document_type,
          {_weighted("NEW.", SEARCH_CHARS)}, {_weighted("NEW.", RANK_CHARS)})
  ON CONFLICT (document_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, created_at = EXCLUDED.created_at,
    document_type = EXCLUDED.document_type, search = EXCLUDED.search, rank_vector = EXCLUDED.rank_vector;
  PERFORM set_config('atrium.system', was, true);
  RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_table(
        "document_search",
        sa.Column(
            "document_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_type", sa.String(32)),
        sa.Column("search", TSVECTOR, nullable=False),
        sa.Column("rank_vector", TSVECTOR, nullable=False),
        schema=S,
    )
    # The vectors out of line (EXTERNAL: not compressed, read whole when matched or ranked), so a row is its
    # keys and two TOAST pointers: a bitmap of matches reads ~70 rows per page. A row under 2 KB (a short
    # document) keeps its vectors inline: TOAST starts only above that.
    for column in ("search", "rank_vector"):
        op.execute(f"ALTER TABLE {S}.document_search ALTER COLUMN {column} SET STORAGE EXTERNAL")
    op.execute(f"ALTER TABLE {S}.document_search SET (toast_tuple_target = 128)")
    op.execute(f"ALTER TABLE {S}.document_search ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.document_search FORCE ROW LEVEL SECURITY")
    # Read as its document is (documents_select, below); written by the trigger alone.
    op.execute(
        f"CREATE POLICY document_search_select ON {S}.document_search FOR SELECT USING"
        f" ({_readable('document_search', 'document_id')})"
    )
    for command in ("INSERT", "UPDATE", "DELETE"):
        with_check = f" WITH CHECK ({SYSTEM})" if command != "DELETE" else ""
        using_ = f" USING ({SYSTEM})" if command != "INSERT" else ""
        op.execute(
            f"CREATE POLICY document_search_{command.lower()} ON {S}.document_search FOR {command}"
            f"{using_}{with_check}"
        )
    # The rows of today's documents, from the vectors they carry (the migration is the system here).
    op.execute("SELECT set_config('atrium.system', 'migration', true)")
    op.execute(
        f"INSERT INTO {S}.document_search (document_id, owner_id, created_at, document_type, search, rank_vector)"
        f" SELECT id, owner_id, created_at, document_type, search, rank_vector FROM {S}.documents"
    )
    op.execute("SELECT set_config('atrium.system', '', true)")
    op.create_index(
        "ix_document_search_owner_type_search",
        "document_search",
        ["owner_id", "document_type", "search"],
        postgresql_using="gin",
        schema=S,
    )
    # No (owner, created_at) index on purpose: walking one in order tests (de-TOASTs) each row's vector, which
    # the planner does not cost (4,243 rows, 17,000 buffers for 500 candidates); the GIN's bitmap reads no
    # vector (a query of words is not rechecked) and its matches are sorted by upload time.
    op.execute(TRIGGER)
    op.execute(
        f"CREATE TRIGGER document_search_insert AFTER INSERT ON {S}.documents"
        f" FOR EACH ROW EXECUTE FUNCTION {S}.document_search_row()"
    )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    op.execute(
        f"CREATE TRIGGER document_search_update AFTER UPDATE OF {', '.join(WATCHED)} ON {S}.documents"
        f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {S}.document_search_row()"
    )
    op.drop_index("ix_documents_owner_type_search", table_name="documents", schema=S)
    op.drop_column("documents", "rank_vector", schema=S)
    op.drop_column("documents", "search", schema=S)
    # Rows written before keep the dropped columns' bytes until they are rewritten: `VACUUM FULL docs.documents`
    # then `VACUUM ANALYZE docs.documents` reclaims them (not here: a rewritten table's index-only scans read
    # the heap until a VACUUM, which cannot run in the migration's transaction).
    op.execute(f"ANALYZE {S}.document_search")


def downgrade() -> None:
    op.add_column(
        "documents",
        sa.Column("search", TSVECTOR, sa.Computed(_weighted("", SEARCH_CHARS), persisted=True)),
        schema=S,
    )
    op.add_column(
        "documents",
        sa.Column("rank_vector", TSVECTOR, sa.Computed(_weighted("", RANK_CHARS), persisted=True)),
        schema=S,
    )
    op.execute(f"ALTER TABLE {S}.documents ALTER COLUMN rank_vector SET STORAGE MAIN")
    op.create_index(
        "ix_documents_owner_type_search",
        "documents",
        ["owner_id", "document_type", "search"],
        postgresql_using="gin",
        schema=S,
    )
    op.execute(f"DROP TRIGGER document_search_update ON {S}.documents")
    op.execute(f"DROP TRIGGER document_search_insert ON {S}.documents")
    op.execute(f"DROP FUNCTION {S}.document_search_row()")
    op.drop_table("document_search", schema=S)

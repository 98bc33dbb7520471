"""document access carries the list's sort keys: each row of `document_access` holds its document's values of
every key a list sorts by (upload time, document date, title, file name, size, status, as
services/docs/handlers/search.py computes them), so the shared branch of a list reads the caller's rows from
the grantee index alone, in list order, and probes `documents` only for the rows of a page (before: every
shared document was probed by primary key, with its row-level security check, and sorted: a ~100 ms floor at
5,300 shared documents, bench/bench_sharing.py). A trigger fills them as a row is written (0014's triggers
write rows), another copies a document's new values to its rows in the writing transaction.

Revision ID: 0015_access_sort_keys
Revises: 0014_document_access
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015_access_sort_keys"
down_revision = "0014_document_access"
branch_labels = None
depends_on = None

S = "docs"

# column -> (type, the document's value as the list sorts by it)
KEYS: dict[str, tuple[sa.types.TypeEngine[Any], str]] = {
    "created_at": (sa.DateTime(timezone=True), "d.created_at"),
    "document_date_key": (sa.Date(), "COALESCE(d.document_date, DATE '0001-01-01')"),
    "title_key": (sa.Text(), "lower(COALESCE(d.title, d.filename))"),
    "filename_key": (sa.Text(), "lower(d.filename)"),
    "size": (sa.BigInteger(), "d.size"),
    "status": (sa.String(16), "d.status"),
}
NAMES = ", ".join(KEYS)
VALUES = ", ".join(value for _, value in KEYS.values())
NEW_VALUES = VALUES.replace("d.", "NEW.")
CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}"
    for c in ("created_at", "document_date", "title", "filename", "size", "status")
)

# Written by 0014's triggers (as the system) only; the document is read past row-level security by them.
FILL_TRIGGER = f"""
CREATE FUNCTION {S}.access_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT {VALUES} INTO {", ".join("NEW." + c for c in KEYS)}
    FROM {S}.documents d WHERE d.id = NEW.document_id;
  RETURN NEW;
END $$"""

# A document's sort columns changed (a title edit, the AI's date, a status step…): its access rows follow in
# the same transaction. Whoever writes the document (an editor too) may not write document_access, so the
# function names itself the system for its one statement and puts back what was set.
FOLLOW_TRIGGER = f"""
CREATE FUNCTION {S}.document_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE was text := coalesce(current_setting('atrium.system', true), '');
BEGIN
  PERFORM set_config('atrium.system', 'document_access', true);
  UPDATE {S}.document_access a SET ({NAMES}) = ({NEW_VALUES})
   WHERE a.document_id = NEW.id;
  PERFORM set_config('atrium.system', was, true);
  RETURN NULL;
END $$"""


def upgrade() -> None:
    for column, (kind, _) in KEYS.items():
        op.add_column("document_access", sa.Column(column, kind), schema=S)
    op.execute("SELECT set_config('atrium.system', 'migration', true)")
    op.execute(
        f"UPDATE {S}.document_access a SET ({NAMES}) = (SELECT {VALUES} FROM {S}.documents d"
        " WHERE d.id = a.document_id)"
    )
    op.execute("SELECT set_config('atrium.system', '', true)")
    for column in KEYS:
        op.alter_column("document_access", column, nullable=False, schema=S)
    # The caller's rows (one range per principal) with every key: the shared branch of a list is read from
    # this index alone and sorted (thousands of small index tuples: a few ms), then a page's worth probed.
    op.drop_index("ix_document_access_grantee", "document_access", schema=S)
    op.create_index(
        "ix_document_access_grantee",
        "document_access",
        ["grantee_id"],
        postgresql_include=["document_id", "owner_id", "role", *KEYS],
        schema=S,
    )
    op.execute(FILL_TRIGGER)
    op.execute(FOLLOW_TRIGGER)
    op.execute(
        f"CREATE TRIGGER access_sort_keys BEFORE INSERT ON {S}.document_access"
        f" FOR EACH ROW EXECUTE FUNCTION {S}.access_sort_keys()"
    )
    op.execute(
        f"CREATE TRIGGER document_sort_keys AFTER UPDATE ON {S}.documents FOR EACH ROW"
        f" WHEN ({CHANGED}) EXECUTE FUNCTION {S}.document_sort_keys()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER document_sort_keys ON {S}.documents")
    op.execute(f"DROP TRIGGER access_sort_keys ON {S}.document_access")
    op.execute(f"DROP FUNCTION {S}.document_sort_keys()")
    op.execute(f"DROP FUNCTION {S}.access_sort_keys()")
    op.drop_index("ix_document_access_grantee", "document_access", schema=S)
    op.create_index(
        "ix_document_access_grantee",
        "document_access",
        ["grantee_id"],
        postgresql_include=["document_id", "owner_id", "role"],
        schema=S,
    )
    for column in KEYS:
        op.drop_column("document_access", column, schema=S)

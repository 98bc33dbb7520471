"""sharing: shares (documents and categories, users and groups), share links, the user directory; row-level
security on every documents table, keyed on the acting user set per transaction (services/docs/access.py)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, UUID

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

S = "docs"

# Who acts, set by the service with set_config(…, true) at the start of each transaction (so it ends with
# it). Unset, every function answers "nobody": a query without them sees no row and may write none.
FUNCTIONS = {
    "acting_user() RETURNS uuid": "SELECT nullif(current_setting('atrium.user_id', true), '')::uuid",
    # The user and the groups they belong to (what shares name).
    "acting_principals() RETURNS uuid[]": (
        "SELECT coalesce(nullif(current_setting('atrium.principals', true), '')::uuid[], '{}'::uuid[])"
    ),
    # An administrator using their powers over others' documents (delete, manage access), audited.
    "acting_admin() RETURNS boolean": "SELECT coalesce(current_setting('atrium.admin', true), '') = 'on'",
    # A background path of the service itself (pipeline, retention, share links…); the value names it.
    "system_access() RETURNS boolean": "SELECT coalesce(current_setting('atrium.system', true), '') <> ''",
}

# Each read once per statement (an InitPlan), not once per row.
SYSTEM = f"(SELECT {S}.system_access())"
ME = f"(SELECT {S}.acting_user())"
ADMIN = f"(SELECT {S}.acting_admin())"
PRINCIPALS = f"CAST((SELECT {S}.acting_principals()) AS uuid[])"


def _shared(table: str, column: str, editors_only: bool = False) -> str:
    """A share names whoever acts (or a group of theirs): of this document (its id among those of the
    document shares naming them: a hashed list, built once per statement), or of a category its owner filed
    it under (its filings, read by the document's id, against the shared categories: one index probe)."""
    role = " AND s.role = 'editor'" if editors_only else ""
    named = f"s.grantee_id = ANY ({PRINCIPALS}){role}"
    document_id = f"{table}.{column}"
    return (
        f"{document_id} IN (SELECT s.document_id FROM {S}.shares s WHERE {named} AND s.document_id IS NOT NULL)"
        f" OR EXISTS (SELECT 1 FROM {S}.document_categories dc WHERE dc.document_id = {document_id}"
        f" AND dc.owner_id = {table}.owner_id AND dc.category_id IN (SELECT s.category_id FROM {S}.shares s"
        f" WHERE {named} AND s.category_id IS NOT NULL))"
    )


# table -> {command: (USING, WITH CHECK)}; a table's commands not named here are refused to everyone.
POLICIES: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "documents": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('documents', 'id')}", None),
        "INSERT": (None, f"{SYSTEM} OR owner_id = {ME}"),
        # An administrator's replay re-processes anyone's documents.
        "UPDATE": (
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('documents', 'id', editors_only=True)}",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('documents', 'id', editors_only=True)}",
        ),
        "DELETE": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}", None),
    },
    # A page is seen with its document (`owner_id` is the document's); only the pipeline writes pages.
    "pages": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {_shared('pages', 'document_id')}", None),
        "INSERT": (None, SYSTEM),
        "UPDATE": (SYSTEM, SYSTEM),
        "DELETE": (SYSTEM, None),
    },
    # Categories are personal.
    "categories": {"ALL": (f"{SYSTEM} OR owner_id = {ME}", f"{SYSTEM} OR owner_id = {ME}")},
    # A link files a document under its owner's category (`owner_id`): the filer sees it, and so does
    # whoever the category is shared with. One files in one's own categories only (which documents one may
    # file is checked by the service).
    "document_categories": {
        "SELECT": (
            f"{SYSTEM} OR owner_id = {ME} OR category_id IN (SELECT s.category_id FROM {S}.shares s"
            f" WHERE s.grantee_id = ANY ({PRINCIPALS}))",
            None,
        ),
        "INSERT": (None, f"{SYSTEM} OR owner_id = {ME}"),
        "UPDATE": (f"{SYSTEM} OR owner_id = {ME}", f"{SYSTEM} OR owner_id = {ME}"),
        "DELETE": (f"{SYSTEM} OR owner_id = {ME}", None),
    },
    # A document's tasks are seen with it (`owner_id` is the document's); an editor's re-process writes them;
    # an administrator sees everyone's (the tasks page, all_users).
    "tasks": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('tasks', 'document_id')}", None),
        "INSERT": (
            None,
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('tasks', 'document_id', True)}",
        ),
        "UPDATE": (
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('tasks', 'document_id', True)}",
            f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR {_shared('tasks', 'document_id', True)}",
        ),
        "DELETE": (SYSTEM, None),
    },
    # The owner (or an administrator) manages shares; a grantee sees the shares that name them.
    "shares": {
        "SELECT": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN} OR grantee_id = ANY ({PRINCIPALS})", None),
        "INSERT": (None, f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}"),
        "UPDATE": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}", f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}"),
        "DELETE": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}", None),
    },
    # A visitor with a link has no account: the service opens it as a system path (audited per use).
    "share_links": {
        "ALL": (f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}", f"{SYSTEM} OR owner_id = {ME} OR {ADMIN}")
    },
}


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE")),
        sa.Column("category_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.categories.id", ondelete="CASCADE")),
        sa.Column("grantee_type", sa.String(8), nullable=False),
        sa.Column("grantee_id", UUID(as_uuid=True), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("(document_id IS NULL) <> (category_id IS NULL)", name="one_target"),
        sa.CheckConstraint("grantee_type IN ('user', 'group')", name="grantee_type"),
        sa.CheckConstraint("role IN ('viewer', 'editor')", name="role"),
        schema=S,
    )
    op.create_index(
        "uq_shares_document_grantee",
        "shares",
        ["document_id", "grantee_id"],
        unique=True,
        postgresql_where=sa.text("document_id IS NOT NULL"),
        schema=S,
    )
    op.create_index(
        "uq_shares_category_grantee",
        "shares",
        ["category_id", "grantee_id"],
        unique=True,
        postgresql_where=sa.text("category_id IS NOT NULL"),
        schema=S,
    )
    # What is shared with these principals, read from the index alone.
    op.create_index(
        "ix_shares_grantee",
        "shares",
        ["grantee_id"],
        postgresql_include=["document_id", "category_id", "owner_id", "role"],
        schema=S,
    )
    op.create_index("ix_shares_owner", "shares", ["owner_id"], schema=S)

    op.create_table(
        "share_links",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "document_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", BYTEA, nullable=False),  # SHA-256 of the token; the token is never stored
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("password_hash", sa.Text),  # argon2id
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("mode IN ('download', 'preview')", name="mode"),
        schema=S,
    )
    op.create_index("uq_share_links_token_hash", "share_links", ["token_hash"], unique=True, schema=S)
    op.create_index("ix_share_links_document", "share_links", ["document_id"], schema=S)

    # Accounts as sharing needs them, projected from the auth service's events (email lookup, names).
    op.create_table(
        "directory",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("uq_directory_email", "directory", [sa.text("lower(email)")], unique=True, schema=S)

    # Who filed a document under a category: the category's owner (a sharee may file a shared document
    # under a category of their own; only the owner's filing shares it through a shared category).
    op.add_column("document_categories", sa.Column("owner_id", UUID(as_uuid=True)), schema=S)
    op.execute(
        f"UPDATE {S}.document_categories dc SET owner_id = c.owner_id FROM {S}.categories c"
        " WHERE c.id = dc.category_id"
    )
    op.alter_column("document_categories", "owner_id", nullable=False, schema=S)
    op.drop_index("ix_document_categories_category", "document_categories", schema=S)
    op.create_index(
        "ix_document_categories_category",
        "document_categories",
        ["category_id", "document_id"],
        postgresql_include=["owner_id"],
        schema=S,
    )

    # A page's owner is its document's: a page's policy then needs no look at `documents`.
    op.add_column("pages", sa.Column("owner_id", UUID(as_uuid=True)), schema=S)
    op.execute(
        f"UPDATE {S}.pages p SET owner_id = d.owner_id FROM {S}.documents d WHERE d.id = p.document_id"
    )
    op.alter_column("pages", "owner_id", nullable=False, schema=S)

    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {S}.{signature} LANGUAGE sql STABLE AS $$ {body} $$")
    for table, policies in POLICIES.items():
        op.execute(f"ALTER TABLE {S}.{table} ENABLE ROW LEVEL SECURITY")
        # The service's role owns the tables; without FORCE the owner would bypass every policy.
        op.execute(f"ALTER TABLE {S}.{table} FORCE ROW LEVEL SECURITY")
        for command, (using, check) in policies.items():
            sql = f"CREATE POLICY {table}_{command.lower()} ON {S}.{table} FOR {command}"
            if using:
                sql += f" USING ({using})"
            if check:
                sql += f" WITH CHECK ({check})"
            op.execute(sql)


def downgrade() -> None:
    for table, policies in POLICIES.items():
        for command in policies:
            op.execute(f"DROP POLICY {table}_{command.lower()} ON {S}.{table}")
        op.execute(f"ALTER TABLE {S}.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {S}.{table} DISABLE ROW LEVEL SECURITY")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {S}.{signature.split(' RETURNS')[0]}")
    op.drop_column("pages", "owner_id", schema=S)
    op.drop_index("ix_document_categories_category", "document_categories", schema=S)
    op.create_index(
        "ix_document_categories_category", "document_categories", ["category_id", "document_id"], schema=S
    )
    op.drop_column("document_categories", "owner_id", schema=S)
    op.drop_table("directory", schema=S)
    op.drop_table("share_links", schema=S)
    op.drop_table("shares", schema=S)

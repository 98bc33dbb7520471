"""OCR (issue 12, phase 2): the original's media type (images are accepted), the PDF an image became, the
run's OCR outcome (pages read, why not, the PDF with text layer) and progress, and each page's OCR info

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "docs"

COLUMNS: list[sa.Column[object]] = [
    sa.Column("media_type", sa.String(32), nullable=False, server_default="application/pdf"),
    sa.Column("pdf_object", sa.String(200)),
    sa.Column("text_layer_object", sa.String(200)),
    sa.Column("ocr_pages", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("ocr_reason", sa.Text),
    sa.Column("ocr_engine", sa.String(200)),
    sa.Column("ocr_done", sa.Integer),
    sa.Column("ocr_total", sa.Integer),
]


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("documents", column, schema=S)
    op.add_column("pages", sa.Column("ocr", JSONB), schema=S)


def downgrade() -> None:
    op.drop_column("pages", "ocr", schema=S)
    for column in reversed(COLUMNS):
        op.drop_column("documents", column.name, schema=S)

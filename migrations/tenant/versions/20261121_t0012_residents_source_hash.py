"""tenant: residents' source hash (the salted hash of the record's bytes as delivered), so a full
extract's unchanged records are skipped before they are decoded or parsed; residents' pages keep 10 %
free for HOT updates

Revision ID: t0012
Revises: t0011
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0012"
down_revision: str | Sequence[str] | None = "t0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding the columns rewrites nothing. Existing rows get their hash when
    # the next full extract reads them (ADR 0002).
    op.add_column("residents", sa.Column("source_hash", sa.BigInteger(), nullable=True))
    op.add_column("import_staging_residents", sa.Column("source_hash", sa.BigInteger(), nullable=True))
    # Room on each page for a changed row's new version: a nightly update of a column no index
    # holds (方書, 異動日, 更新日時 ...) is then a HOT update that adds no entry to the seven indexes.
    # Pages written from now on (a first load, `residents reorder`) keep it; existing pages as they are.
    op.execute("ALTER TABLE residents SET (fillfactor = 90)")


def downgrade() -> None:
    op.execute("ALTER TABLE residents RESET (fillfactor)")
    op.drop_column("import_staging_residents", "source_hash")
    op.drop_column("residents", "source_hash")

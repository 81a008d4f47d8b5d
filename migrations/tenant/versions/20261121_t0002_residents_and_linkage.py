"""tenant: residents, households, attributes, import batches and staging

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-21 02:05:38.885892
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0002"
down_revision: str | Sequence[str] | None = "t0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("household_no", sa.Text(), nullable=False),
        sa.Column("head_atena_no", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("member_count", sa.SmallInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint("household_no", name=op.f("uq_households_household_no")),
    )
    op.create_table(
        "import_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("rows_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_inserted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_updated", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_unchanged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_missing", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('residents', 'attributes')", name=op.f("ck_import_batches_kind")),
        sa.CheckConstraint("mode IN ('full', 'changes')", name=op.f("ck_import_batches_mode")),
        sa.CheckConstraint("policy IN ('reject_all', 'quarantine')", name=op.f("ck_import_batches_policy")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'applied', 'rejected', 'duplicate', 'failed')",
            name=op.f("ck_import_batches_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    op.create_index(op.f("ix_import_batches_created_at"), "import_batches", ["created_at"], unique=False)
    op.create_index(
        "uq_import_batches_applied_content",
        "import_batches",
        ["kind", "content_sha256"],
        unique=True,
        postgresql_where=sa.text("status = 'applied'"),
    )
    op.create_table(
        "import_rejections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("record", sa.Integer(), nullable=True),
        sa.Column("column", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rejections")),
    )
    op.create_index(
        op.f("ix_import_rejections_batch_id_line"), "import_rejections", ["batch_id", "line"], unique=False
    )
    op.create_table(
        "import_staging_attributes",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("atena_no", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        prefixes=["UNLOGGED"],  # staging rows need no crash safety: the batch reruns
    )
    op.create_table(
        "import_staging_residents",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("atena_no", sa.Text(), nullable=False),
        sa.Column("household_no", sa.Text(), nullable=False),
        sa.Column("household_order", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_search", sa.Text(), nullable=False),
        sa.Column("kana", sa.Text(), nullable=True),
        sa.Column("kana_search", sa.Text(), nullable=True),
        sa.Column("kana_confirmed", sa.Boolean(), nullable=False),
        sa.Column("former_surname", sa.Text(), nullable=True),
        sa.Column("birth", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.SmallInteger(), nullable=False),
        sa.Column("relation", sa.Text(), nullable=False),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("address_extra", sa.Text(), nullable=True),
        sa.Column("address_search", sa.Text(), nullable=False),
        sa.Column("became_resident", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("address_set", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("change_reason", sa.Text(), nullable=True),
        sa.Column("change", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("change_date", sa.Date(), nullable=True),
        sa.Column("core_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_hash", sa.BigInteger(), nullable=False),
        prefixes=["UNLOGGED"],  # staging rows need no crash safety: the batch reruns
    )
    op.create_table(
        "import_staging_households",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("household_no", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "household_no", name=op.f("pk_import_staging_households")),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "linkage_objects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adapter", sa.Text(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="taken", nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('taken', 'imported', 'rejected', 'failed')", name=op.f("ck_linkage_objects_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkage_objects")),
    )
    op.create_index(
        "uq_linkage_objects_adapter_key_etag",
        "linkage_objects",
        ["adapter", "object_key", "etag"],
        unique=True,
    )
    op.create_table(
        "resident_attributes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("atena_no", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("last_batch_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_attributes")),
    )
    op.create_index(
        op.f("ix_resident_attributes_atena_no"), "resident_attributes", ["atena_no"], unique=False
    )
    op.create_index(
        op.f("ix_resident_attributes_item_value"), "resident_attributes", ["item", "value"], unique=False
    )
    op.create_table(
        "residents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("atena_no", sa.Text(), nullable=False),
        sa.Column("household_no", sa.Text(), nullable=False),
        sa.Column("household_order", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_search", sa.Text(collation="C"), nullable=False),
        sa.Column("kana", sa.Text(), nullable=True),
        sa.Column("kana_search", sa.Text(collation="C"), nullable=True),
        sa.Column("kana_confirmed", sa.Boolean(), nullable=False),
        sa.Column("former_surname", sa.Text(), nullable=True),
        sa.Column("birth", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.SmallInteger(), nullable=False),
        sa.Column("relation", sa.Text(), nullable=False),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("address_extra", sa.Text(), nullable=True),
        sa.Column("address_search", sa.Text(collation="C"), nullable=False),
        sa.Column("became_resident", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("address_set", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("change_reason", sa.Text(), nullable=True),
        sa.Column("change", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("change_date", sa.Date(), nullable=True),
        sa.Column("core_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_hash", sa.BigInteger(), nullable=False),
        sa.Column("last_batch_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('日本人', '外国人')", name=op.f("ck_residents_kind")),
        sa.CheckConstraint(
            "status IN ('住民', '転出', '死亡', '職権消除')", name=op.f("ck_residents_status")
        ),
        sa.CheckConstraint("sex IN (1, 2, 9)", name=op.f("ck_residents_sex")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residents")),
        sa.UniqueConstraint("atena_no", name=op.f("uq_residents_atena_no")),
    )
    op.create_index(
        op.f("ix_residents_address_search_id"), "residents", ["address_search", "id"], unique=False
    )
    op.create_index(op.f("ix_residents_birth_date"), "residents", ["birth_date"], unique=False)
    op.create_index(
        op.f("ix_residents_household_no_household_order"),
        "residents",
        ["household_no", "household_order"],
        unique=False,
    )
    op.create_index(op.f("ix_residents_kana_search_id"), "residents", ["kana_search", "id"], unique=False)
    op.create_index(op.f("ix_residents_name_search_id"), "residents", ["name_search", "id"], unique=False)

    # The tenant role does not own its tables, so it cannot ANALYZE them; imports need fresh
    # statistics right after COPY (planner estimates for a just-filled staging table are blind).
    # This one function, owned by the schema owner, analyzes exactly the import tables.
    op.execute(
        """
        CREATE FUNCTION analyze_import_tables(what text) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            IF what = 'staging' THEN
                ANALYZE import_staging_residents, import_staging_households, import_staging_attributes;
            ELSIF what = 'residents' THEN
                ANALYZE residents, households;
            ELSIF what = 'attributes' THEN
                ANALYZE resident_attributes;
            ELSE
                RAISE EXCEPTION 'unknown table group %', what;
            END IF;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION analyze_import_tables(text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION analyze_import_tables(text)")
    op.drop_table("import_staging_households")
    op.drop_index(op.f("ix_residents_name_search_id"), table_name="residents")
    op.drop_index(op.f("ix_residents_kana_search_id"), table_name="residents")
    op.drop_index(op.f("ix_residents_household_no_household_order"), table_name="residents")
    op.drop_index(op.f("ix_residents_birth_date"), table_name="residents")
    op.drop_index(op.f("ix_residents_address_search_id"), table_name="residents")
    op.drop_table("residents")
    op.drop_index(op.f("ix_resident_attributes_item_value"), table_name="resident_attributes")
    op.drop_index(op.f("ix_resident_attributes_atena_no"), table_name="resident_attributes")
    op.drop_table("resident_attributes")
    op.drop_index("uq_linkage_objects_adapter_key_etag", table_name="linkage_objects")
    op.drop_table("linkage_objects")
    op.drop_table("import_staging_residents")
    op.drop_table("import_staging_attributes")
    op.drop_index(op.f("ix_import_rejections_batch_id_line"), table_name="import_rejections")
    op.drop_table("import_rejections")
    op.drop_index(
        "uq_import_batches_applied_content",
        table_name="import_batches",
        postgresql_where=sa.text("status = 'applied'"),
    )
    op.drop_index(op.f("ix_import_batches_created_at"), table_name="import_batches")
    op.drop_table("import_batches")
    op.drop_table("households")

"""tenant: audit hash chain, archives and retention

Existing entries are chained in (occurred_at, id) order. See docs/adr/0005-audit-chain.md.

Revision ID: t0008
Revises: t0007
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.canonical import GENESIS, digest, entry_object, format_time
from app.db.migrate import rendering_new_schema
from app.db.names import code_for_schema

revision: str = "t0008"
down_revision: str | Sequence[str] | None = "t0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEX64 = "'^[0-9a-f]{64}$'"


def upgrade() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.Text(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"last_hash ~ {HEX64}", name=op.f("ck_audit_archives_last_hash_hex")),
        sa.CheckConstraint("first_seq > 0 AND last_seq >= first_seq", name=op.f("ck_audit_archives_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archives")),
        sa.UniqueConstraint("last_seq", name=op.f("uq_audit_archives_last_seq")),
    )
    op.create_table(
        "audit_retention",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("retention_years", sa.SmallInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_retention_one_row")),
        sa.CheckConstraint("retention_years BETWEEN 1 AND 30", name=op.f("ck_audit_retention_years")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_retention")),
    )

    op.add_column("audit_log", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.Text(), nullable=True))
    op.add_column("audit_log", sa.Column("hash", sa.Text(), nullable=True))
    if not rendering_new_schema(op.get_context()):  # a new schema has no entries to chain
        _chain_existing_entries()
    for column in ("seq", "prev_hash", "hash"):
        op.alter_column("audit_log", column, nullable=False)
    op.create_unique_constraint(op.f("uq_audit_log_seq"), "audit_log", ["seq"])
    op.create_check_constraint(op.f("ck_audit_log_seq_positive"), "audit_log", "seq > 0")
    op.create_check_constraint(
        op.f("ck_audit_log_hashes_hex"), "audit_log", f"hash ~ {HEX64} AND prev_hash ~ {HEX64}"
    )
    op.create_index(
        op.f("ix_audit_log_details"),
        "audit_log",
        ["details"],
        postgresql_using="gin",
        postgresql_ops={"details": "jsonb_path_ops"},
    )

    # Appending under the tenant's lock (app.db.audit.append_entries). Keys: AUDIT_LOCK_CLASS and
    # the tenant's code (schema t_<code>). VOLATILE plpgsql at READ COMMITTED: the SELECT after the
    # lock takes a new snapshot, so it sees every entry committed before the lock was granted;
    # REPEATABLE READ would keep an older snapshot and fork the chain, so it is refused. The
    # canonical text comes as four fragments around at, prev and seq (app.audit.canonical.
    # entry_template): the hash is taken here, in the one round trip that holds the lock.
    op.execute(
        """
        CREATE FUNCTION audit_append(early boolean, entries jsonb)
        RETURNS TABLE (entry_id bigint, entry_seq bigint, entry_prev text, entry_hash text,
                       entry_at timestamptz)
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        DECLARE
            e jsonb;
            v_seq bigint;
            v_prev text;
            v_at timestamptz;
            v_at_text text;
        BEGIN
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'audit_log is chained at READ COMMITTED only, not %',
                    current_setting('transaction_isolation')
                    USING HINT = 'a snapshot older than the chain lock would fork the chain';
            END IF;
            PERFORM pg_advisory_xact_lock(1635083380, substr(current_schema(), 3)::int);
            IF early THEN
                PERFORM set_config('synchronous_commit', 'off', true);
            END IF;
            SELECT seq, hash INTO v_seq, v_prev FROM audit_log ORDER BY seq DESC LIMIT 1;
            IF NOT FOUND THEN
                SELECT last_seq, last_hash INTO v_seq, v_prev
                  FROM audit_archives ORDER BY last_seq DESC LIMIT 1;
            END IF;
            v_seq := coalesce(v_seq, 0);
            v_prev := coalesce(v_prev, repeat('0', 64));
            v_at := clock_timestamp();
            v_at_text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
            FOR e IN SELECT value FROM jsonb_array_elements(entries) LOOP
                v_seq := v_seq + 1;
                entry_hash := encode(sha256(convert_to(
                    (e->>'c0') || v_at_text || (e->>'c1') || v_prev || (e->>'c2') || v_seq::text
                    || (e->>'c3'), 'UTF8')), 'hex');
                INSERT INTO audit_log (seq, prev_hash, hash, occurred_at, actor_type, actor_id, actor_name,
                                       terminal, action, subject_type, subject_id, purpose, request_id,
                                       details)
                VALUES (v_seq, v_prev, entry_hash, v_at, e->>'actor_type', e->>'actor_id', e->>'actor_name',
                        e->>'terminal', e->>'action', e->>'subject_type', e->>'subject_id', e->>'purpose',
                        e->>'request_id', e->'details')
                RETURNING id INTO entry_id;
                entry_seq := v_seq;
                entry_prev := v_prev;
                entry_at := v_at;
                RETURN NEXT;
                v_prev := entry_hash;
            END LOOP;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION audit_append(boolean, jsonb) FROM PUBLIC")

    # The durability barrier (app.db.audit.durability_barrier): setval always writes WAL and gives the
    # transaction an xid, so its synchronous commit flushes the WAL up to itself. Owner's rights:
    # the tenant role may not change sequences.
    op.execute("CREATE SEQUENCE audit_flush_seq")
    op.execute(
        """
        CREATE FUNCTION audit_flush() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            PERFORM setval('audit_flush_seq', 1, false);
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION audit_flush() FROM PUBLIC")

    # The only way entries leave audit_log: after archival (app.audit.archive), never inside the
    # tenant's retention, which it reads from audit_retention (written by tenants sync), and only
    # as a prefix of the chain, leaving an audit_archives row that verification chains through.
    op.execute(
        """
        CREATE FUNCTION audit_delete_archived(p_last_seq bigint, p_last_hash text, p_object_key text,
                                              p_manifest_sha256 text)
        RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        DECLARE
            v_years int;
            v_first bigint;
            v_hash text;
            v_newest timestamptz;
            v_deleted bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(1635083380, substr(current_schema(), 3)::int);
            SELECT retention_years INTO v_years FROM audit_retention WHERE id = 1;
            IF v_years IS NULL THEN
                RAISE EXCEPTION 'no audit retention is set for this tenant (run tenants sync)';
            END IF;
            SELECT coalesce(max(last_seq), 0) + 1 INTO v_first FROM audit_archives;
            IF (SELECT min(seq) FROM audit_log) IS DISTINCT FROM v_first THEN
                RAISE EXCEPTION 'audit_log does not start at entry % after the last archival cut', v_first;
            END IF;
            SELECT hash INTO v_hash FROM audit_log WHERE seq = p_last_seq;
            IF v_hash IS NULL OR v_hash <> p_last_hash THEN
                RAISE EXCEPTION 'entry % does not have the archived hash', p_last_seq;
            END IF;
            SELECT max(occurred_at) INTO v_newest FROM audit_log WHERE seq <= p_last_seq;
            IF v_newest >= now() - make_interval(years => v_years) THEN
                RAISE EXCEPTION 'entries up to % are inside the retention of % years', p_last_seq, v_years;
            END IF;
            DELETE FROM audit_log WHERE seq <= p_last_seq;
            GET DIAGNOSTICS v_deleted = ROW_COUNT;
            IF v_deleted <> p_last_seq - v_first + 1 THEN
                RAISE EXCEPTION 'entries % to % are not contiguous', v_first, p_last_seq;
            END IF;
            INSERT INTO audit_archives (first_seq, last_seq, last_hash, entries, object_key, manifest_sha256)
            VALUES (v_first, p_last_seq, p_last_hash, v_deleted, p_object_key, p_manifest_sha256);
            RETURN v_deleted;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION audit_delete_archived(bigint, text, text, text) FROM PUBLIC")


def _chain_existing_entries() -> None:
    conn = op.get_bind()
    tenant = code_for_schema(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    rows = conn.execute(
        sa.text(
            "SELECT id, occurred_at, actor_type, actor_id, actor_name, terminal, action, subject_type,"
            " subject_id, purpose, request_id, details FROM audit_log ORDER BY occurred_at, id"
        )
    ).all()
    prev, updates = GENESIS, []
    for seq, r in enumerate(rows, start=1):
        obj = entry_object(
            tenant, seq, prev, format_time(r.occurred_at), r.actor_type, r.actor_id, r.actor_name,
            r.terminal, r.action, r.subject_type, r.subject_id, r.purpose, r.request_id, r.details,
        )  # fmt: skip
        updates.append({"id": r.id, "seq": seq, "prev": prev, "hash": (prev := digest(obj))})
    if updates:
        conn.execute(
            sa.text("UPDATE audit_log SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"),
            updates,
        )


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_delete_archived(bigint, text, text, text)")
    op.execute("DROP FUNCTION audit_append(boolean, jsonb)")
    op.execute("DROP FUNCTION audit_flush()")
    op.execute("DROP SEQUENCE audit_flush_seq")
    op.drop_index(op.f("ix_audit_log_details"), table_name="audit_log")
    op.drop_constraint(op.f("ck_audit_log_hashes_hex"), "audit_log", type_="check")
    op.drop_constraint(op.f("ck_audit_log_seq_positive"), "audit_log", type_="check")
    op.drop_constraint(op.f("uq_audit_log_seq"), "audit_log", type_="unique")
    op.drop_column("audit_log", "hash")
    op.drop_column("audit_log", "prev_hash")
    op.drop_column("audit_log", "seq")
    op.drop_table("audit_retention")
    op.drop_table("audit_archives")

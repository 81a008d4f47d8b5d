"""tenant: a first load into an empty residents table builds its search indexes once, at the end

Revision ID: t0009
Revises: t0008
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0009"
down_revision: str | Sequence[str] | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Maintaining five btrees row by row while COPY fills an empty residents table took PostgreSQL
    # twice as long as the COPY itself (300,000 rows: 20 s against 10 s + 4 s to build the indexes
    # afterwards). The tenant role does not own the table, so this function (owned by the schema
    # owner) drops the plain indexes -- never the primary key or the 宛名番号 unique constraint --
    # remembering their definitions in a temporary table that only lives until the transaction
    # ends, and recreates them from there. Everything happens in the import's one transaction: a
    # rejected or failed import rolls back to the indexes as they were. 'begin' refuses a table
    # that is not empty (that would be an ordinary import, through staging).
    op.execute(
        """
        CREATE FUNCTION residents_bulk_load(phase text) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        DECLARE
            target regclass := to_regclass(quote_ident(current_schema()) || '.residents');
            d record;
            found_row boolean;
            n integer := 0;
        BEGIN
            IF phase = 'begin' THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', target) INTO found_row;
                IF found_row THEN
                    RAISE EXCEPTION 'residents is not empty: no bulk load';
                END IF;
                CREATE TEMP TABLE IF NOT EXISTS residents_deferred_indexes (
                    name text NOT NULL, definition text NOT NULL
                ) ON COMMIT DROP;
                FOR d IN
                    SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
                    FROM pg_index i
                    WHERE i.indrelid = target
                      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                LOOP
                    INSERT INTO pg_temp.residents_deferred_indexes VALUES (d.name, d.definition);
                    EXECUTE 'DROP INDEX ' || d.name;
                    n := n + 1;
                END LOOP;
            ELSIF phase = 'end' THEN
                IF to_regclass('pg_temp.residents_deferred_indexes') IS NULL THEN
                    RETURN 0;
                END IF;
                PERFORM set_config('maintenance_work_mem', '256MB', true);
                FOR d IN SELECT definition FROM pg_temp.residents_deferred_indexes LOOP
                    EXECUTE d.definition;
                    n := n + 1;
                END LOOP;
                DELETE FROM pg_temp.residents_deferred_indexes;
            ELSE
                RAISE EXCEPTION 'unknown phase %', phase;
            END IF;
            RETURN n;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION residents_bulk_load(text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION residents_bulk_load(text)")

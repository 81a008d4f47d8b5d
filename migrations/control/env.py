"""Alembic environment for the ``control`` tree, used only by the ``alembic`` command line.

The service itself migrates in-process (app.db.migrate.upgrade) from ``madoguchi tenants sync``.
"""

from app.db.migrate import run_env_for_cli

run_env_for_cli("control")

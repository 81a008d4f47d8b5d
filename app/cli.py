"""``madoguchi`` command line. Exit codes: 0 ok, 1 rejected input, 2 usage error (click)."""

from __future__ import annotations

import sys

import click

from app.audit.cli import audit
from app.audit.service import actor_var
from app.cliutil import cli_actor
from app.config import get_settings
from app.forms.cli import forms
from app.guidance.cli import guidance
from app.identity.cli import clients, ops, users
from app.jobs.cli import worker
from app.linkage import cli_adapters  # noqa: F401  (attaches linkage check and poll)
from app.linkage.cli import linkage
from app.logs import configure_logging
from app.observability.cli import incidents, sla
from app.residents.cli import residents
from app.tenancy.cli import calendar, demo, tenants


@click.group()
def main() -> None:
    """Madoguchi 窓口支援システム: operations command line."""
    settings = get_settings()
    configure_logging(settings.log_level if settings.log_level != "INFO" else "WARNING", json_output=False)
    actor_var.set(cli_actor())


for _group in (
    tenants,
    calendar,
    users,
    clients,
    ops,
    demo,
    worker,
    linkage,
    residents,
    guidance,
    forms,
    sla,
    incidents,
    audit,
):
    main.add_command(_group)

if __name__ == "__main__":
    sys.exit(main())

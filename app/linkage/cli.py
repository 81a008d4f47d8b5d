"""``madoguchi linkage ...``: front-linkage imports, adapter checks and polls."""

from __future__ import annotations

import click


@click.group()
def linkage() -> None:
    """Front linkage (前方連携): import files, check adapters, poll object storage."""

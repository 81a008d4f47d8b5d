"""Shared pieces of the command line: errors with exit code 1, ``--json`` output, the CLI actor."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from app.audit.service import Actor
from app.inputs import BIGINT_MAX

# A record's id on the command line: every id column is a bigint, so a longer number is refused as
# a usage error (exit code 2) instead of reaching the database.
RECORD_ID = click.IntRange(1, BIGINT_MAX)


class InputRejected(click.ClickException):
    """Bad input from the operator or a file: message printed, exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"エラー: {self.format_message()}", err=True)


def emit(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    """Print rows as JSON (``--json``) or one human-readable line each."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    else:
        for row in rows:
            click.echo(line(row))


def cli_actor() -> Actor:
    return Actor("cli", f"cli:{getpass.getuser()}", None, socket.gethostname()[:64])


def write_generated(files: Mapping[Path, str], check: bool) -> None:
    """Write generated, checked-in files; with ``check``, only fail (exit 1) if any is stale."""
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if check:
        if stale:
            raise InputRejected("生成ファイルが古くなっています: " + ", ".join(str(p) for p in stale))
        click.echo("ok: 生成ファイルは最新です")
        return
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"{'更新' if path in stale else '変更なし'} {path}")

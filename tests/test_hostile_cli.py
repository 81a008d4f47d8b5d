"""Hostile arguments to every ``madoguchi`` command: an operator's typo gets a message, never a
traceback.

The commands come from the click tree (a command added tomorrow is covered tomorrow). Each is
called in-process, inside the test's rolled-back transaction, with its arguments and text options
filled with values an operator can type by mistake: an unknown city, a known city with an
impossible date, numbers beyond bigint, overlong text, files that do not exist. The exit code must
be 0, 1 (refused input) or 2 (usage: click's own message), and what a command prints must not be
a Python exception.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from app.cli import main
from tests.test_hostile_input import PYTHON_ERRORS

# Long-running or whole-installation commands, covered by their own tests: a worker that serves
# until stopped, city-scale data generation, provisioning every tenant.
SKIPPED = {"worker", "demo seed", "tenants sync"}

VARIANTS: tuple[dict[str, str], ...] = (
    {"tenant": "nosuchcity", "text": "2026-02-30", "number": "-1"},
    {"tenant": "gobo", "text": "令和0年1月1日", "number": "9" * 30},
    {"tenant": "gobo", "text": "x" * 300, "number": "0"},
    {"tenant": "gobo", "text": "", "number": "999999999"},
)


def _commands(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, [*path, name])
    else:
        yield path, command


def _arguments(command: click.Command, variant: dict[str, str]) -> list[str]:
    args: list[str] = []
    options: list[str] = []
    for param in command.params:
        kind = getattr(param.type, "name", "")
        if isinstance(param, click.Argument):
            if param.name == "tenant":
                args.append(variant["tenant"])
            elif kind in ("integer", "integer range"):
                args.append(variant["number"])
            elif kind in ("file", "path"):
                args.append("/nonexistent/madoguchi")
            else:
                args.append(variant["text"])
            continue
        assert isinstance(param, click.Option)
        if param.is_flag or kind == "choice" or param.name == "password_stdin":
            continue
        flag = param.opts[0]
        if kind in ("integer", "integer range"):
            options += [flag, variant["number"]]
        elif kind in ("file", "directory", "path"):
            options += [flag, "/nonexistent/madoguchi"]
        elif param.name == "tenant":
            options += [flag, variant["tenant"]]
        else:
            options += [flag, variant["text"]]
    return [*options, *args]


# db: whatever a command writes is rolled back with the test; audit_store: seals go to a fresh prefix
@pytest.mark.usefixtures("db", "audit_store")
def test_no_command_answers_hostile_arguments_with_a_traceback() -> None:
    runner = CliRunner()
    failures: list[str] = []
    ran = 0
    for path, command in _commands(main, []):
        if " ".join(path) in SKIPPED:
            continue
        # commands without arguments to vary run once (reading every tenant's files takes seconds)
        for argv in dict.fromkeys(tuple([*path, *_arguments(command, v)]) for v in VARIANTS):
            result = runner.invoke(main, list(argv), input="", catch_exceptions=True)
            ran += 1
            shown = f"{' '.join(a[:24] for a in argv)}"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                failures.append(f"{shown}: {type(result.exception).__name__}: {str(result.exception)[:160]}")
            elif result.exit_code not in (0, 1, 2):
                failures.append(f"{shown}: exit {result.exit_code}")
            elif result.exit_code != 2 and (
                leaked := PYTHON_ERRORS.search(result.output)
            ):  # 2: click's usage
                failures.append(f"{shown}: prints Python's message {leaked.group(0)!r}")
    assert ran > 100
    assert not failures, f"{len(failures)} of {ran} commands:\n" + "\n".join(failures)

"""Trial prints (見本の印刷) of a form being edited, in a child process with limits.

A tenant's template is code its author wrote. Jinja's sandbox keeps it away from Python's internals,
not from work without end: two nested ``range(99999)`` loops are 10^10 steps, ``'x' * 99999 * 99999``
is 10 GB, and a short page of CSS can lay out for minutes. In a web worker's thread that would hold
the thread, and the worker's CPU, for every city the worker serves, until the process restarts. So
the editor's preview and the check before a draft is saved print in a child process forked from a
warm fork server, under a ceiling of CPU time and memory and a deadline, and a template over a limit
is refused in Japanese like one with a syntax error. Approved versions print in the worker at the
counter: each passed this trial on the 見本 household and was approved by a second person.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import threading
from multiprocessing.connection import Connection
from typing import Any

from jinja2 import TemplateError

from app.forms.fill import FilledForm
from app.forms.render import render_pdf, template_line

DEADLINE_SECONDS = 15.0
MEMORY_BYTES = 1 << 30  # the child's heap; the 見本 print needs about 100 MB
CONCURRENT = 2  # trial prints at once per worker process; more wait for a free slot

_context = multiprocessing.get_context("forkserver")
# The fork server imports the renderer and builds its fonts once; each trial forks from it warm.
_context.set_forkserver_preload(["app.forms.trial_preload"])
_slots = threading.BoundedSemaphore(CONCURRENT)

# What a template's own mistakes raise while printing (shown with their message and line).
TEMPLATE_FAULTS = (TemplateError, TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError)


class TrialRefusal(Exception):
    """Why the trial print failed, in Japanese, with the template line when one is known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def trial_pdf(filled: FilledForm, *, tenant_name: str, template: str | None) -> bytes:
    """The PDF of ``filled`` printed with ``template`` in a limited child; raises TrialRefusal."""
    if not _slots.acquire(timeout=DEADLINE_SECONDS):
        raise TrialRefusal(None, "見本の印刷が混み合っています。しばらくしてからもう一度お試しください")
    try:
        return _print_in_child(filled, tenant_name, template)
    finally:
        _slots.release()


def _print_in_child(filled: FilledForm, tenant_name: str, template: str | None) -> bytes:
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(target=_child, args=(sender, filled, tenant_name, template), daemon=True)
    try:
        child.start()
    except (OSError, EOFError) as exc:  # no fork server (out of processes or memory): say so
        receiver.close()
        sender.close()
        logging.getLogger(__name__).error("trial print could not start: %s", exc)
        raise TrialRefusal(
            None, "見本の印刷を始められませんでした。しばらくしてからもう一度お試しください"
        ) from exc
    sender.close()
    try:
        if not receiver.poll(DEADLINE_SECONDS):
            raise TrialRefusal(
                None,
                f"印刷が{DEADLINE_SECONDS:.0f}秒で終わりませんでした。繰り返し（for）の回数や"
                "大きな値・長い文字列を作る式を見直してください",
            )
        try:
            kind, *payload = receiver.recv()
        except EOFError:  # the child ended without an answer: over its memory or CPU ceiling
            raise TrialRefusal(
                None,
                "印刷に使うメモリか計算が上限を超えました。繰り返しや長い文字列を作る式を見直してください",
            ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if kind == "pdf":
        return payload[0]  # type: ignore[no-any-return]
    raise TrialRefusal(payload[0], payload[1])


def _child(sender: Connection, filled: FilledForm, tenant_name: str, template: str | None) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_BYTES, MEMORY_BYTES))
    seconds = int(DEADLINE_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    answer: tuple[Any, ...]
    try:
        answer = ("pdf", render_pdf(filled, tenant_name=tenant_name, template=template))
    except TEMPLATE_FAULTS as exc:
        message = getattr(exc, "message", None) or str(exc)
        answer = ("problem", template_line(exc), f"印刷できません（{message}）")
    except RecursionError as exc:
        answer = ("problem", template_line(exc), "印刷できません（式や繰り返しの入れ子が深すぎます）")
    except MemoryError:
        answer = (
            "problem",
            None,
            "印刷に使うメモリが上限を超えました。繰り返しや長い文字列を作る式を見直してください",
        )
    except Exception as exc:  # the layout engine gave up on what the template made: still its problem
        logging.getLogger(__name__).warning("trial print failed: %s", type(exc).__name__)
        answer = ("problem", template_line(exc), "印刷できません（レイアウトを処理できませんでした）")
    sender.send(answer)
    sender.close()


def warm() -> None:
    """Build the renderer's fonts and print once, so that every forked trial starts warm."""
    from app.pdf import renderer

    renderer().render("<p>見本 太郎 𠮷</p>")

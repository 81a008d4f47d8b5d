"""The procedure determiner (手続き判定): life event + household + answers → procedures, with reasons.

Deterministic: procedures come in the catalogue's department order, then file order, then
household order of the members. Every procedure of the event is accounted for: needed (with its
reason), 要確認 (an unanswered question decides it: listed with the questions, never guessed), or
not needed (with the condition that was not met), so a supervisor can see why something is absent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import cel

from app.dates.wareki import format_wareki
from app.guidance.catalogue import EVENT_NAMES, Catalogue, Procedure, Question
from app.guidance.facts import MemberInput, household_facts, member_facts
from app.guidance.rules import (
    MISSING_KEY,
    UNKNOWN_BIRTH,
    Outcome,
    Rule,
    RuleError,
    compile_rule,
    context,
    evaluate,
)

_PLACEHOLDER_JOIN = "・"


class CatalogueError(ValueError):
    """Rules that do not compile: (file, key path, message) each."""

    def __init__(self, problems: list[tuple[str, tuple[str | int, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f} {'.'.join(map(str, p))}: {m}" for f, p, m in problems))


@dataclass(frozen=True)
class CompiledProcedure:
    spec: Procedure
    when: Rule
    values: dict[str, Rule]
    items: list[tuple[str, Rule | None]]
    position: int


@dataclass(frozen=True)
class CompiledQuestion:
    spec: Question
    ask_when: Rule | None
    position: int


@dataclass
class CompiledCatalogue:
    catalogue: Catalogue
    content_hash: str
    procedures: list[CompiledProcedure]
    questions: dict[str, CompiledQuestion]
    department_order: dict[str, int]


def compile_catalogue(catalogue: Catalogue, content_hash: str = "") -> CompiledCatalogue:
    """Compile every rule once; all problems are collected before failing."""
    problems: list[tuple[str, tuple[str | int, ...], str]] = []
    question_ids = frozenset(q.id for q in catalogue.questions)

    def rule(source: str, member_scope: bool, file: str, path: tuple[str | int, ...]) -> Rule | None:
        try:
            return compile_rule(source, member_scope=member_scope, question_ids=question_ids)
        except RuleError as exc:
            problems.append((file, path, str(exc)))
            return None

    questions: dict[str, CompiledQuestion] = {}
    for i, q in enumerate(catalogue.questions):
        ask = rule(q.ask_when, False, "guidance.yaml", ("questions", i, "ask_when")) if q.ask_when else None
        questions[q.id] = CompiledQuestion(q, ask, i)
    problems.extend(_question_cycles(questions))

    procedures: list[CompiledProcedure] = []
    for i, p in enumerate(catalogue.procedures):
        member = p.scope == "member"
        when = rule(p.when, member, "procedures.yaml", ("procedures", i, "when"))
        values = {
            k: rule(v, member, "procedures.yaml", ("procedures", i, "values", k)) for k, v in p.values.items()
        }
        items = [
            (
                item.text,
                rule(item.when, member, "procedures.yaml", ("procedures", i, "bring", j, "when"))
                if item.when
                else None,
            )
            for j, item in enumerate(p.bring)
        ]
        if when is not None and all(v is not None for v in values.values()):
            procedures.append(
                CompiledProcedure(p, when, {k: v for k, v in values.items() if v is not None}, items, i)
            )
    if problems:
        raise CatalogueError(problems)
    order = {d.id: i for i, d in enumerate(catalogue.departments)}
    return CompiledCatalogue(catalogue, content_hash, procedures, questions, order)


def _question_cycles(questions: dict[str, CompiledQuestion]) -> list[tuple[str, tuple[str | int, ...], str]]:
    """A question asked only when another is answered, which is asked only when the first is ... ."""
    graph = {qid: set(q.ask_when.questions) if q.ask_when else set() for qid, q in questions.items()}
    problems: list[tuple[str, tuple[str | int, ...], str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loop = " → ".join([*path[path.index(nxt) :], nxt]) if nxt in path else f"{node} → {nxt}"
                problems.append(
                    (
                        "guidance.yaml",
                        ("questions", questions[node].position, "ask_when"),
                        f"質問の条件が循環しています（{loop}）",
                    )
                )
            elif state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for qid in questions:
        if state.get(qid) is None:
            visit(qid, [qid])
    return problems


# --- determination -----------------------------------------------------------------------------


@dataclass
class Entry:
    procedure: str
    name: str
    department: str
    department_name: str
    counter: str
    status: str  # needed | confirm | not_needed
    reason: str
    member: str | None = None
    member_key: str | None = None
    deadline: dt.date | None = None
    deadline_text: str | None = None
    fee: int | None = None
    fee_text: str | None = None
    bring: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    notes: str | None = None
    questions: list[str] = field(default_factory=list)  # for 要確認: the questions that decide it

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["deadline"] = self.deadline.isoformat() if self.deadline else None
        return data


@dataclass
class OpenQuestion:
    id: str
    text: str
    type: str
    choices: list[dict[str, str]]
    help: str | None
    decides: list[str]  # procedure names that wait for it


@dataclass
class Determination:
    version: str
    event: str
    event_name: str
    event_date: dt.date
    members: list[dict[str, Any]]
    needed: list[Entry]
    confirm: list[Entry]
    not_needed: list[Entry]
    open_questions: list[OpenQuestion]

    def by_department(self) -> list[tuple[str, str, list[Entry]]]:
        """(department name, counter, entries) for the needed and 要確認 procedures, in order."""
        groups: dict[str, tuple[str, str, list[Entry]]] = {}
        for entry in [*self.needed, *self.confirm]:
            groups.setdefault(entry.department, (entry.department_name, entry.counter, []))[2].append(entry)
        return list(groups.values())


class AnswerError(ValueError):
    """An answer that does not fit its question; names the question id."""

    def __init__(self, question: str, message: str):
        self.question = question
        super().__init__(message)


def coerce_answers(compiled: CompiledCatalogue, raw: dict[str, Any]) -> dict[str, Any]:
    """Typed answers: yes_no → bool, number → int, choice → str, choices → list[str]."""
    answers: dict[str, Any] = {}
    for key, value in raw.items():
        question = compiled.questions.get(key)
        if question is None:
            raise AnswerError(key, f"質問「{key}」はこのカタログにありません")
        spec = question.spec
        if spec.type == "yes_no":
            if isinstance(value, bool):
                answers[key] = value
            elif str(value).strip().lower() in ("yes", "y", "true", "1", "はい", "有", "あり"):
                answers[key] = True
            elif str(value).strip().lower() in ("no", "n", "false", "0", "いいえ", "無", "なし"):
                answers[key] = False
            else:
                raise AnswerError(key, f"「{spec.text}」には はい／いいえ で答えてください")
        elif spec.type == "number":
            try:
                answers[key] = int(str(value))
            except ValueError:
                raise AnswerError(key, f"「{spec.text}」には数で答えてください") from None
        else:
            allowed = {c.value for c in spec.choices or ()}
            values = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            unknown = [v for v in values if v not in allowed]
            if unknown or (spec.type == "choice" and len(values) != 1):
                labels = "、".join(f"{c.value}（{c.label}）" for c in spec.choices or ())
                raise AnswerError(key, f"「{spec.text}」の答えは次から選んでください: {labels}")
            answers[key] = values[0] if spec.type == "choice" else values
    return answers


def _format(value: Any) -> str:
    if isinstance(value, list):
        return _PLACEHOLDER_JOIN.join(_format(v) for v in value)
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    return str(value)


def _deadline(proc: Procedure, event_date: dt.date) -> tuple[dt.date | None, str | None]:
    if proc.deadline is None:
        return None, None
    due = event_date + dt.timedelta(days=proc.deadline.days)
    text = proc.deadline.text or f"{format_wareki(due)}まで（{proc.deadline.days}日以内）"
    return due, text


def determine(
    compiled: CompiledCatalogue,
    event: str,
    event_date: dt.date,
    members: list[MemberInput],
    answers: dict[str, Any],
) -> Determination:
    catalogue = compiled.catalogue
    if event not in {e.code for e in catalogue.events}:
        raise AnswerError("event", f"ライフイベント「{event}」はこの自治体のカタログにありません")
    facts = [member_facts(m, event_date) for m in members]
    base = {**household_facts(facts, event, event_date), **answers}
    household_ctx = context(base)
    member_ctxs: list[cel.Context] | None = None

    needed: list[Entry] = []
    confirm: list[Entry] = []
    not_needed: list[Entry] = []
    waiting: dict[str, list[str]] = {}
    for proc in sorted(
        (p for p in compiled.procedures if event in p.spec.events),
        key=lambda p: (compiled.department_order[p.spec.department], p.position),
    ):
        spec = proc.spec
        department = catalogue.department(spec.department)
        if spec.scope == "member":
            if member_ctxs is None:
                member_ctxs = [context({**base, "member": f}) for f in facts]
            targets: list[tuple[dict[str, Any] | None, cel.Context]] = list(
                zip(facts, member_ctxs, strict=True)
            )
        else:
            targets = [(None, household_ctx)]
        for member, ctx in targets:
            outcome = evaluate(proc.when, ctx)
            entry = Entry(
                procedure=spec.id,
                name=spec.name,
                department=department.id,
                department_name=department.name,
                counter=department.counter,
                status="not_needed",
                reason="",
                member=member["name"] if member else None,
                member_key=member["key"] if member else None,
            )
            if outcome.missing:
                entry.status = "confirm"
                entry.questions = [q for q in compiled.questions if q in outcome.missing]
                if UNKNOWN_BIRTH in outcome.missing:
                    entry.reason = f"要確認: {spec.when_text}（生年月日が不詳のため年齢で判定できません）"
                elif MISSING_KEY in outcome.missing:
                    entry.reason = f"要確認: {spec.when_text}（条件を判定できません。カタログの管理者に連絡してください）"
                else:
                    entry.reason = f"要確認: {spec.when_text}（質問への回答が必要です）"
                for q in entry.questions:
                    waiting.setdefault(q, []).append(
                        spec.name + (f"（{entry.member}）" if entry.member else "")
                    )
                confirm.append(entry)
                continue
            if not outcome.value:
                entry.reason = f"該当しません: {spec.when_text}" + (
                    f"（{member['name']}: 生年月日不詳のため年齢で判定できません）"
                    if member and not member["age_known"]
                    else ""
                )
                not_needed.append(entry)
                continue
            entry.status = "needed"
            entry.reason = _reason(proc, ctx, member)
            entry.deadline, entry.deadline_text = _deadline(spec, event_date)
            entry.fee, entry.fee_text = spec.fee, spec.fee_text or (f"{spec.fee:,}円" if spec.fee else None)
            entry.bring = [text for text, when in proc.items if when is None or _true(when, ctx)]
            entry.forms = list(spec.forms)
            entry.notes = spec.notes
            needed.append(entry)
    open_questions = [
        OpenQuestion(
            q.spec.id,
            q.spec.text,
            q.spec.type,
            [{"value": c.value, "label": c.label} for c in q.spec.choices or ()],
            q.spec.help,
            waiting[q.spec.id],
        )
        for q in sorted(compiled.questions.values(), key=lambda q: q.position)
        if q.spec.id in waiting and _asked(q, event, household_ctx)
    ]
    return Determination(
        version=catalogue.version,
        event=event,
        event_name=EVENT_NAMES[event],
        event_date=event_date,
        members=[
            {k: m.get(k) for k in ("key", "name", "age", "relation", "sex", "age_known")} for m in facts
        ],
        needed=needed,
        confirm=confirm,
        not_needed=not_needed,
        open_questions=open_questions,
    )


def _true(rule: Rule, ctx: cel.Context) -> bool:
    outcome: Outcome = evaluate(rule, ctx)
    return bool(outcome.value) and not outcome.missing


def _asked(question: CompiledQuestion, event: str, ctx: cel.Context) -> bool:
    if question.spec.events and event not in question.spec.events:
        return False
    if question.ask_when is None:
        return True
    outcome = evaluate(question.ask_when, ctx)
    return bool(outcome.value) or bool(outcome.missing)


def _reason(proc: CompiledProcedure, ctx: cel.Context, member: dict[str, Any] | None) -> str:
    spec = proc.spec
    if not spec.reason:
        return (
            spec.when_text if member is None else f"{member['name']}（{member['age']}歳）: {spec.when_text}"
        )
    values = {k: _format(evaluate(rule, ctx).value) for k, rule in proc.values.items()}
    if member is not None:
        values.setdefault("name", member["name"])
        values.setdefault("age", str(member.get("age", "不詳")))
    return spec.reason.format(**values)

"""The procedure determiner (手続き判定): life event + household + answers → procedures, with reasons.

Deterministic: procedures come in the catalogue's department order, then file order, then
household order of the members. Every procedure of the event is accounted for: needed (with its
reason), 要確認 (an unanswered question decides it: listed with the questions, never guessed), or
not needed (with the condition that was not met), so a supervisor can see why something is absent.

A 要確認 names only questions the clerk is shown at that event (asked at the event and, with
``ask_when``, in that household); the loader rejects a procedure whose rules read a question that
none of its events asks. When the event's subjects (亡くなった方 ...) are not named yet, the open
question ``subject`` lists the household's members to choose from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cel

from app.dates.periods import period_end
from app.dates.wareki import format_wareki
from app.guidance.catalogue import (
    EVENT_NAMES,
    MAX_COUNT,
    Catalogue,
    LifeEvent,
    Procedure,
    Question,
)
from app.guidance.facts import MemberInput, household_facts, member_facts, subject_keys
from app.guidance.rules import (
    MISSING_KEY,
    RESERVED_NAMES,
    SUBJECT_QUESTION,
    UNKNOWN_BIRTH,
    UNKNOWN_SUBJECT,
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
    quantity: Rule | None = None


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
    # The names the rules of each event read, per event: a context holds only those (each collection
    # of members is converted into CEL values once per context, which is most of the cost). ``reads``
    # for the household's context (household-scope procedures, questions' ask_when), ``member_reads``
    # for each member's (member-scope procedures: mostly ``member`` alone). An event missing from
    # them gets every fact.
    reads: dict[str, frozenset[str]] = field(default_factory=dict)
    member_reads: dict[str, frozenset[str]] = field(default_factory=dict)


def compile_catalogue(catalogue: Catalogue, content_hash: str = "") -> CompiledCatalogue:
    """Compile every rule once; all problems are collected before failing."""
    problems: list[tuple[str, tuple[str | int, ...], str]] = []
    question_ids = frozenset(q.id for q in catalogue.questions)
    by_id = questions_of(catalogue)

    def rule(source: str, member_scope: bool, file: str, path: tuple[str | int, ...]) -> Rule | None:
        try:
            return compile_rule(source, member_scope=member_scope, question_ids=question_ids)
        except RuleError as exc:
            problems.append((file, path, str(exc)))
            return None

    questions: dict[str, CompiledQuestion] = {}
    for i, q in enumerate(catalogue.questions):
        if q.id in RESERVED_NAMES:
            problems.append(
                (
                    "guidance.yaml",
                    ("questions", i, "id"),
                    f"質問ID「{q.id}」は条件の名前として予約されています",
                )
            )
        ask = rule(q.ask_when, False, "guidance.yaml", ("questions", i, "ask_when")) if q.ask_when else None
        questions[q.id] = CompiledQuestion(q, ask, i)
        if ask is not None:
            problems.extend(_unasked(ask, q.events, by_id, ("guidance.yaml", ("questions", i, "ask_when"))))
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
        quantity = (
            rule(p.quantity, member, "procedures.yaml", ("procedures", i, "quantity")) if p.quantity else None
        )
        read: list[tuple[Rule | None, tuple[str | int, ...]]] = [
            (when, ("procedures", i, "when")),
            *((v, ("procedures", i, "values", k)) for k, v in values.items()),
            *((r, ("procedures", i, "bring", j, "when")) for j, (_, r) in enumerate(items)),
            (quantity, ("procedures", i, "quantity")),
        ]
        for compiled_rule, path in read:
            if compiled_rule is not None:
                problems.extend(_unasked(compiled_rule, p.events, by_id, ("procedures.yaml", path)))
        if when is not None and all(v is not None for v in values.values()):
            procedures.append(
                CompiledProcedure(
                    p, when, {k: v for k, v in values.items() if v is not None}, items, i, quantity
                )
            )
    if problems:
        raise CatalogueError(problems)
    order = {d.id: i for i, d in enumerate(catalogue.departments)}
    asking = frozenset(n for q in questions.values() if q.ask_when for n in q.ask_when.names)

    def read_by(event: str, scope: str) -> frozenset[str]:
        return frozenset(
            n
            for proc in procedures
            if event in proc.spec.events and proc.spec.scope == scope
            for rule in (proc.when, *proc.values.values(), *(r for _, r in proc.items), proc.quantity)
            if rule is not None
            for n in rule.names
        )

    reads: dict[str, frozenset[str]] = {
        e.code: asking | read_by(e.code, "household") for e in catalogue.events
    }
    member_reads: dict[str, frozenset[str]] = {e.code: read_by(e.code, "member") for e in catalogue.events}
    return CompiledCatalogue(catalogue, content_hash, procedures, questions, order, reads, member_reads)


def questions_of(catalogue: Catalogue) -> dict[str, Question]:
    return {q.id: q for q in catalogue.questions}


def _unasked(
    rule: Rule,
    events: Sequence[str] | None,
    questions: dict[str, Question],
    where: tuple[str, tuple[str | int, ...]],
) -> list[tuple[str, tuple[str | int, ...], str]]:
    """A rule that reads a question none of its events asks would wait for an answer nobody is asked."""
    problems = []
    for qid in sorted(rule.questions):
        asked_at = questions[qid].events
        if asked_at is None or events is None or set(asked_at) & set(events):
            continue
        problems.append(
            (
                where[0],
                where[1],
                f"質問「{qid}」は {'・'.join(EVENT_NAMES[e] for e in asked_at)} でだけ質問されるため、"
                f"{'・'.join(EVENT_NAMES[e] for e in events)} では答えが得られません"
                "（質問の events に加えるか、条件を見直してください）",
            )
        )
    return problems


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
    fee: int | None = None  # per one when quantity is given
    fee_text: str | None = None
    quantity: int | None = None  # 通数 of a certificate
    unit: str | None = None
    fee_total: int | None = None  # fee × quantity (the fee when there is no quantity)
    bring: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    notes: str | None = None
    questions: list[str] = field(default_factory=list)  # for 要確認: the questions that decide it

    @property
    def fee_line(self) -> str:
        """手数料 as shown: per copy × copies = total when a quantity is known."""
        if self.quantity is None:
            return self.fee_text or ""
        if self.fee is None or self.fee_total is None:
            return f"{self.fee_text or ''}（{self.quantity}{self.unit}）"
        return f"{self.fee_text or f'{self.fee:,}円'} × {self.quantity}{self.unit} = {self.fee_total:,}円"

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
    subject_label: str | None = None  # 亡くなった方 …: the event names a subject
    subjects: list[str] | None = None  # their names, None while they are not named

    @property
    def fee_total(self) -> int | None:
        """手数料の合計 of the needed procedures (None when none has a fee)."""
        fees = [e.fee_total for e in self.needed if e.fee_total is not None]
        return sum(fees) if fees else None

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
    """Typed answers: yes_no → bool, number → int, choice → str, choices → list[str],
    counts → {value: count} (from a mapping, or values with an optional count: ``juminhyo:2,inkan``)."""
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
        elif spec.type == "counts":
            answers[key] = _counts(key, spec, value)
        else:
            allowed = {c.value for c in spec.choices or ()}
            values = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            unknown = [v for v in values if v not in allowed]
            if unknown or (spec.type == "choice" and len(values) != 1):
                labels = "、".join(f"{c.value}（{c.label}）" for c in spec.choices or ())
                raise AnswerError(key, f"「{spec.text}」の答えは次から選んでください: {labels}")
            answers[key] = values[0] if spec.type == "choice" else values
    return answers


def _counts(key: str, spec: Question, value: Any) -> dict[str, int]:
    labels = "、".join(f"{c.value}（{c.label}）" for c in spec.choices or ())
    allowed = {c.value for c in spec.choices or ()}
    pairs: list[tuple[str, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = value if isinstance(value, list) else str(value).split(",")
        pairs = []
        for item in (str(i).strip() for i in items):
            if item:
                name, sep, count = item.partition(":")
                pairs.append((name.strip(), count.strip() if sep else 1))
    counts: dict[str, int] = {}
    for name, count in pairs:
        if name not in allowed:
            raise AnswerError(key, f"「{spec.text}」の答えは次から選んでください: {labels}")
        try:
            number = int(str(count))
        except ValueError:
            number = -1
        if not 0 <= number <= MAX_COUNT or name in counts:
            raise AnswerError(
                key, f"「{spec.text}」: {name} の通数は1〜{MAX_COUNT}で一度だけ指定してください（{count}）"
            )
        if number:
            counts[name] = number
    return counts


MISSING_VALUE = "未回答"  # a reason's value that waits for an answer
UNKNOWN_VALUE = "不明"  # one that cannot be known (年月日不詳, subject not named, catalogue defect)


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return _PLACEHOLDER_JOIN.join(_format(v) for v in value)
    if isinstance(value, dict):
        return _PLACEHOLDER_JOIN.join(f"{k}{_format(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    return str(value)


def _deadline(proc: Procedure, event_date: dt.date) -> tuple[dt.date | None, str | None]:
    spec = proc.deadline
    if spec is None:
        return None, None
    due = period_end(event_date, days=spec.days, months=spec.months, count_first_day=spec.count_first_day)
    if spec.text:
        return due, spec.text.replace("{date}", format_wareki(due))
    span = f"{spec.days}日" if spec.days is not None else f"{spec.months}か月"
    return due, f"{format_wareki(due)}まで（{'当日を含めて' if spec.count_first_day else ''}{span}以内）"


def determine(
    compiled: CompiledCatalogue,
    event: str,
    event_date: dt.date,
    members: list[MemberInput],
    answers: dict[str, Any],
) -> Determination:
    catalogue = compiled.catalogue
    life_event = next((e for e in catalogue.events if e.code == event), None)
    if life_event is None:
        raise AnswerError("event", f"ライフイベント「{event}」はこの自治体のカタログにありません")
    facts = [member_facts(m, event_date) for m in members]
    subjects = subject_keys(members, event, event_date, named_by_event=life_event.subject is not None)
    if subjects is not None:
        for f in facts:
            f["is_subject"] = f["key"] in subjects
    household = {**household_facts(facts, event, event_date), **answers}
    reads, member_reads = compiled.reads.get(event), compiled.member_reads.get(event)
    household_ctx = context(household if reads is None else _only(household, reads))
    member_ctxs: list[cel.Context] | None = None
    asked = {qid for qid, q in compiled.questions.items() if _asked(q, event, household_ctx)}

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
                shared = household if member_reads is None else _only(household, member_reads)
                member_ctxs = [context({**shared, "member": f}) for f in facts]
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
                entry.questions = [q for q in compiled.questions if q in outcome.missing and q in asked]
                entry.reason = f"要確認: {spec.when_text}（{_why_confirm(outcome.missing, entry.questions, life_event)}）"
                if UNKNOWN_SUBJECT in outcome.missing:
                    entry.questions.insert(0, SUBJECT_QUESTION)
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
            if proc.quantity is not None:
                entry.quantity, entry.unit = _quantity(proc, ctx), spec.unit
            if spec.fee is not None:
                entry.fee_total = spec.fee * (entry.quantity if entry.quantity is not None else 1)
            entry.bring = [text for text, when in proc.items if when is None or _true(when, ctx)]
            entry.forms = list(spec.forms)
            entry.notes = spec.notes
            needed.append(entry)
    open_questions = (
        [_subject_question(life_event, facts, waiting[SUBJECT_QUESTION])]
        if SUBJECT_QUESTION in waiting
        else []
    )
    open_questions += [
        OpenQuestion(
            q.spec.id,
            q.spec.text,
            q.spec.type,
            [{"value": c.value, "label": c.label} for c in q.spec.choices or ()],
            q.spec.help,
            waiting[q.spec.id],
        )
        for q in sorted(compiled.questions.values(), key=lambda q: q.position)
        if q.spec.id in waiting
    ]
    return Determination(
        version=catalogue.version,
        event=event,
        event_name=EVENT_NAMES[event],
        event_date=event_date,
        members=[
            {k: m.get(k) for k in ("key", "name", "age", "relation", "sex", "age_known", "is_subject")}
            for m in facts
        ],
        needed=needed,
        confirm=confirm,
        not_needed=not_needed,
        open_questions=open_questions,
        subject_label=life_event.subject,
        subjects=None if subjects is None else [f["name"] for f in facts if f["key"] in subjects],
    )


def _only(values: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in names}


def _why_confirm(missing: frozenset[str], shown: list[str], event: LifeEvent) -> str:
    if UNKNOWN_BIRTH in missing:
        return "生年月日が不詳のため年齢で判定できません"
    if MISSING_KEY in missing:
        return "条件を判定できません。カタログの管理者に連絡してください"
    if UNKNOWN_SUBJECT in missing:
        return f"{event.subject or '対象の方'}を選んでください"
    if not shown:  # reads a question this event does not ask: a catalogue defect
        return "この届出では質問しない回答を条件が読んでいます。カタログの管理者に連絡してください"
    return "質問への回答が必要です"


def _subject_question(event: LifeEvent, facts: list[dict[str, Any]], decides: list[str]) -> OpenQuestion:
    """Who the event is about, as a question whose choices are the household's members."""
    label = event.subject or "対象の方"
    choices = [{"value": f["key"], "label": f"{f['name']}（{f['relation']}）"} for f in facts]
    if event.subject_none:
        choices.append({"value": NO_SUBJECT, "label": event.subject_none})
    return OpenQuestion(
        SUBJECT_QUESTION,
        f"{label}はどなたですか",
        "choices",
        choices,
        f"世帯の方から{label}を選んでください"
        + (f"（いなければ「{event.subject_none}」）" if event.subject_none else ""),
        decides,
    )


NO_SUBJECT = "none"  # the answer "nobody" to the subject question


def _quantity(proc: CompiledProcedure, ctx: cel.Context) -> int | None:
    assert proc.quantity is not None
    outcome = evaluate(proc.quantity, ctx)
    value = outcome.value
    if outcome.missing or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _true(rule: Rule, ctx: cel.Context) -> bool:
    outcome: Outcome = evaluate(rule, ctx)
    return bool(outcome.value) and not outcome.missing


def _asked(question: CompiledQuestion, event: str, ctx: cel.Context) -> bool:
    """Whether the clerk is shown the question at this event for this household."""
    if question.spec.events and event not in question.spec.events:
        return False
    if question.ask_when is None:
        return True
    outcome = evaluate(question.ask_when, ctx)
    return bool(outcome.value) or bool(outcome.missing)


def _value_text(rule: Rule, ctx: cel.Context) -> str:
    outcome = evaluate(rule, ctx)
    if outcome.missing:
        return MISSING_VALUE if outcome.missing & rule.questions else UNKNOWN_VALUE
    return _format(outcome.value)


def _reason(proc: CompiledProcedure, ctx: cel.Context, member: dict[str, Any] | None) -> str:
    spec = proc.spec
    age = None if member is None else (f"{member['age']}歳" if "age" in member else "年齢不詳")
    if not spec.reason:
        return spec.when_text if member is None else f"{member['name']}（{age}）: {spec.when_text}"
    values = {k: _value_text(rule, ctx) for k, rule in proc.values.items()}
    if member is not None:
        values.setdefault("name", member["name"])
        values.setdefault("age", str(member.get("age", UNKNOWN_VALUE)))
    return spec.reason.format(**values)

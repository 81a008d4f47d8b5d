"""Tenant configuration models (``tenants/<id>/*.yaml``), validated with unknown keys rejected.

``tenant.yaml`` holds identity, offices and counters; ``sla.yaml`` holds service hours (開庁時間),
support-desk hours, the incident policy and log retention; ``linkage.yaml`` the front-linkage
adapters and file layouts; ``residents.yaml`` search settings. Each is merged over the file of the
same name in ``tenants/_defaults/``. The loader in ``app.tenancy.loader`` turns validation errors into
messages naming the file, key path and line.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_serializer, model_validator

from app.forms.loader import FeeTable, FormSource
from app.guidance.catalogue import Catalogue
from app.identity.config import RolesConfig, SecurityConfig
from app.linkage.config import LinkageConfig, ResidentsConfig
from app.validation import StrictModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_JA = {"mon": "月", "tue": "火", "wed": "水", "thu": "木", "fri": "金", "sat": "土", "sun": "日"}

RESERVED_TENANT_IDS = frozenset(
    {"api", "static", "healthz", "readyz", "metrics", "ops", "admin", "login", "logout", "favicon.ico"}
)


def _parse_hhmm(value: str) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not m:
        raise ValueError(f"time must look like HH:MM, got {value!r}")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"no such time of day: {value!r}")
    return hours * 60 + minutes


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class TimeRange(StrictModel):
    """A span within one day, written ``"09:00-17:30"``; end may be ``24:00``."""

    start: int = Field(ge=0, le=1440)
    end: int = Field(ge=0, le=1440)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split("-")
            if len(parts) != 2:
                raise ValueError(f"time range must look like 09:00-17:30, got {value!r}")
            return {"start": _parse_hhmm(parts[0]), "end": _parse_hhmm(parts[1])}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(
                f"time range must end after it starts: "
                f"{format_minutes(self.start)}-{format_minutes(self.end)}"
            )
        return self

    @model_serializer
    def _to_text(self) -> str:
        return f"{format_minutes(self.start)}-{format_minutes(self.end)}"

    def overlaps(self, other: TimeRange) -> bool:
        return self.start < other.end and other.start < self.end

    def __str__(self) -> str:
        return self._to_text()


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str | dict) else value


class CalendarRule(StrictModel):
    """Opening hours on some weekdays, optionally only on the n-th such weekday of the month."""

    name: str = Field(min_length=1)
    days: list[Weekday] = Field(min_length=1)
    hours: list[TimeRange] = Field(min_length=1)
    weeks_of_month: list[Annotated[int, Field(ge=1, le=5)]] | None = Field(
        default=None, description="n-th occurrence of the weekday in the month (第4日曜 = [4])"
    )
    on_closed_days: bool = Field(
        default=False, description="also applies on national holidays, year-end and closing days"
    )
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    _hours_list = field_validator("hours", mode="before")(_one_or_many)

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: list[Weekday]) -> list[Weekday]:
        if len(set(days)) != len(days):
            raise ValueError("a weekday is listed twice")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for i, a in enumerate(self.hours):
            for b in self.hours[i + 1 :]:
                if a.overlaps(b):
                    raise ValueError(f"hours {a} and {b} overlap")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_from is after valid_until")
        return self

    def can_share_a_day_with(self, other: CalendarRule) -> bool:
        if not set(self.days) & set(other.days):
            return False
        both_weekly = self.weeks_of_month is not None and other.weeks_of_month is not None
        if both_weekly and not set(self.weeks_of_month or ()) & set(other.weeks_of_month or ()):
            return False
        lo = max(self.valid_from or dt.date.min, other.valid_from or dt.date.min)
        hi = min(self.valid_until or dt.date.max, other.valid_until or dt.date.max)
        return lo <= hi


class MonthDay(StrictModel):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", value.strip())
            if not m:
                raise ValueError(f"month-day must look like 12-29, got {value!r}")
            return {"month": int(m.group(1)), "day": int(m.group(2))}
        return value

    @model_validator(mode="after")
    def _exists(self) -> Self:
        dt.date(2024, self.month, self.day)  # leap year: 02-29 is a valid month-day
        return self

    @model_serializer
    def _to_text(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"


class YearEnd(StrictModel):
    """Closing over the new year (年末年始), e.g. 12-29 to 01-03 inclusive."""

    start: MonthDay
    end: MonthDay

    def contains(self, day: dt.date) -> bool:
        key = (day.month, day.day)
        s, e = (self.start.month, self.start.day), (self.end.month, self.end.day)
        if s > e:  # wraps over new year
            return s <= key or key <= e
        return s <= key <= e


class ClosedDays(StrictModel):
    national_holidays: bool = True
    year_end: YearEnd | None = None
    dates: list[dt.date] = Field(default_factory=list, description="municipal closing days (休庁日)")


class CalendarConfig(StrictModel):
    rules: list[CalendarRule] = Field(min_length=1)
    closed: ClosedDays = ClosedDays()

    @model_validator(mode="after")
    def _no_overlaps(self) -> Self:
        names = [r.name for r in self.rules]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"rule names must be unique: {sorted(dupes)}")
        for i, a in enumerate(self.rules):
            for b in self.rules[i + 1 :]:
                if a.can_share_a_day_with(b):
                    for ha in a.hours:
                        for hb in b.hours:
                            if ha.overlaps(hb):
                                raise ValueError(
                                    f"calendar rules {a.name!r} ({ha}) and {b.name!r} ({hb}) overlap"
                                )
        return self


class SupportDeskConfig(StrictModel):
    """Support-desk hours (問い合わせ窓口): the service hours widened by a margin, or their own."""

    follows_service_hours: bool = False
    margin_minutes: int = Field(default=0, ge=0, le=240)
    calendar: CalendarConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.follows_service_hours == (self.calendar is not None):
            raise ValueError("set either follows_service_hours: true or a calendar of its own")
        if self.margin_minutes and not self.follows_service_hours:
            raise ValueError("margin_minutes applies only with follows_service_hours")
        return self


class IncidentPolicy(StrictModel):
    initial_response_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="target from detection to first response; null = 速やかに"
    )
    written_report: bool = False
    periodic_report_months: int | None = Field(default=None, ge=1, le=12)


class AuditPolicy(StrictModel):
    retention_years: int = Field(ge=1, le=30, description="operation log kept in the database, then archived")
    seal_minutes: int = Field(default=15, ge=1, le=1440, description="how often the chain head is sealed")


class SlaTargets(StrictModel):
    availability: float = Field(gt=0.9, lt=1.0, description="inside service hours")
    latency_p95_ms: int = Field(gt=0, le=10_000)


class SlaConfig(StrictModel):
    service_hours: CalendarConfig
    support_desk: SupportDeskConfig
    incident: IncidentPolicy
    audit: AuditPolicy
    targets: SlaTargets


class Counter(StrictModel):
    """A counter (窓口) in an office; tickets (番号札) carry its prefix."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1)
    ticket_prefix: str = Field(pattern=r"^[A-Z]{1,2}$")


class Office(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1)
    postal_code: str = Field(pattern=r"^\d{3}-\d{4}$")
    address: str = Field(min_length=1)
    counters: list[Counter] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        _require_unique([c.id for c in self.counters], "counter id")
        _require_unique([c.ticket_prefix for c in self.counters], "ticket_prefix")
        return self


def code_check_digit(first5: str) -> int:
    """Check digit of a 全国地方公共団体コード (JIS X 0402 + check digit)."""
    total = sum(int(d) * w for d, w in zip(first5, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


class TenantIdentity(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$", description="URL prefix and CLI name")
    code: str = Field(pattern=r"^\d{6}$", description="全国地方公共団体コード (6 digits)")
    name: str = Field(min_length=1)
    name_kana: str = Field(pattern=r"^[ァ-ヴー]+$")
    prefecture: str = Field(min_length=2)
    offices: list[Office] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_TENANT_IDS:
            raise ValueError(f"{value!r} is reserved for the service's own URLs")
        return value

    @field_validator("code")
    @classmethod
    def _check_digit(cls, value: str) -> str:
        if code_check_digit(value[:5]) != int(value[5]):
            raise ValueError(f"{value} fails the local-government code check digit")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Self:
        _require_unique([o.id for o in self.offices], "office id")
        return self


class TenantConfig(StrictModel):
    """Everything ``tenants sync`` stores for one tenant (kept as JSON in ``control.tenants``)."""

    tenant: TenantIdentity
    sla: SlaConfig
    linkage: LinkageConfig = LinkageConfig()
    residents: ResidentsConfig = ResidentsConfig()
    roles: RolesConfig | None = None  # None only for configs stored before issue 5; loader always sets it
    security: SecurityConfig = SecurityConfig()
    catalogue: Catalogue | None = None  # guidance.yaml + procedures.yaml + forms/catalog.yaml
    fees: FeeTable = FeeTable()
    forms: list[FormSource] = Field(default_factory=list)  # forms/<id>/form.yaml; stored per version at sync


def _require_unique(values: list[str], what: str) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{what} must be unique: {dupes}")

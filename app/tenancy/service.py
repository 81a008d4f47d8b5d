"""The runtime tenant registry and calendar overrides (臨時開庁・臨時閉庁)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.config import get_settings
from app.dates import JST
from app.db.names import DbBinding, control_binding, tenant_binding
from app.db.session import new_session
from app.tenancy.calendar import Override, ServiceCalendar, calendars_for
from app.tenancy.config import TenantConfig, TimeRange
from app.tenancy.models import CalendarOverride, Tenant

# --- runtime registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantRecord:
    id: str
    code: str
    name: str
    schema_name: str
    status: str
    config_hash: str
    binding: DbBinding


# Parts of a stored configuration kept per version in the tenant's schema (catalogue_versions,
# form_versions) and read from there at run time: the registry leaves them out.
_VERSIONED_PARTS = ("catalogue", "forms")


class TenantRegistry:
    """Process-local view of ``control.tenants``, refreshed every few seconds.

    Configurations are parsed once per content hash, so a ``tenants sync`` reaches running
    processes without a restart; the least recently used are dropped past ``tenant_cache_size``
    and parsed again from the control table when next asked for (ADR 0001 addendum: ~0.1 MB a
    configuration without its catalogue and forms; whole ones took a worker to ~5 GB at 1,741).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, TenantRecord] = {}
        self._loaded_at = -1.0e9
        self._signature: tuple[object, ...] | None = None
        self._configs: LRUCache[str, TenantConfig] | None = None  # made on first use (settings)
        self._configs_lock = threading.Lock()  # an LRU reorders itself on every read

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = -1.0e9
            self._signature = None

    def _refresh(self) -> None:
        ttl = get_settings().tenant_cache_seconds
        if time.monotonic() - self._loaded_at < ttl:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < ttl:
                return
            prefix = get_settings().role_prefix
            session = new_session(control_binding(prefix))
            try:
                # A cheap signature first: with 1,741 tenants, reload the rows only when they changed.
                signature = tuple(session.execute(select(func.count(), func.max(Tenant.updated_at))).one())
                if signature != self._signature:
                    rows = session.execute(
                        select(
                            Tenant.id,
                            Tenant.code,
                            Tenant.name,
                            Tenant.schema_name,
                            Tenant.status,
                            Tenant.config_hash,
                        )
                    ).all()
                    self._records = {
                        r.id: TenantRecord(
                            r.id,
                            r.code,
                            r.name,
                            r.schema_name,
                            r.status,
                            r.config_hash,
                            tenant_binding(prefix, r.id, r.code),
                        )
                        for r in rows
                    }
                    self._signature = signature
                session.rollback()
            finally:
                session.close()
            self._loaded_at = time.monotonic()

    def get(self, tenant_id: str) -> TenantRecord | None:
        """An active tenant by id, else None (suspended tenants are invisible to users)."""
        self._refresh()
        record = self._records.get(tenant_id)
        return record if record is not None and record.status == "active" else None

    def all(self) -> list[TenantRecord]:
        self._refresh()
        return sorted(self._records.values(), key=lambda r: r.code)

    def cached_config(self, record: TenantRecord) -> TenantConfig | None:
        """The parsed configuration if this process already has it; never touches the database."""
        with self._configs_lock:
            return self._config_cache().get(record.config_hash)

    def config(self, record: TenantRecord) -> TenantConfig:
        """The tenant's configuration as the running service needs it: without the catalogue and
        the forms, which ``tenants sync`` stores per version in the tenant's own schema and the
        service reads from there (they are ~95 % of a stored configuration, ~2 MB of objects)."""
        cached = self.cached_config(record)
        if cached is not None:
            return cached
        stored: ColumnElement[Any] = Tenant.config.expression
        for versioned in _VERSIONED_PARTS:
            stored = stored.op("-", return_type=JSONB)(versioned)
        session = new_session(control_binding(get_settings().role_prefix))
        try:
            data, content_hash = session.execute(
                select(stored, Tenant.config_hash).where(Tenant.id == record.id)
            ).one()
            session.rollback()
        finally:
            session.close()
        config = TenantConfig.model_validate(data)
        with self._configs_lock:
            self._config_cache()[content_hash] = config  # the stored content's hash, as records carry
        return config

    def _config_cache(self) -> LRUCache[str, TenantConfig]:
        if self._configs is None:
            self._configs = LRUCache(maxsize=get_settings().tenant_cache_size)
        return self._configs


registry = TenantRegistry()


# --- calendar overrides (臨時開庁・臨時閉庁) ------------------------------------------------------


class OverrideInputError(ValueError):
    """Invalid override input; the message is Japanese, for the administrator."""


def load_overrides(session: Session, start: dt.date | None = None) -> list[Override]:
    stmt = select(CalendarOverride).order_by(CalendarOverride.created_at, CalendarOverride.id)
    if start is not None:
        stmt = stmt.where(CalendarOverride.on_date >= start)
    return [_to_override(o) for o in session.scalars(stmt)]


def _to_override(row: CalendarOverride) -> Override:
    hours = (
        (row.opens_min, row.closes_min) if row.opens_min is not None and row.closes_min is not None else None
    )
    return Override(row.on_date, row.kind, hours, row.created_at, row.revoked_at, row.reason)


def tenant_calendars(session: Session, config: TenantConfig) -> tuple[ServiceCalendar, ServiceCalendar]:
    return calendars_for(config.sla, load_overrides(session))


def add_override(
    session: Session, *, on_date: dt.date, kind: str, hours: str | None, reason: str, entered_by: str
) -> CalendarOverride:
    if kind not in ("open", "closed"):
        raise OverrideInputError("種別は open（臨時開庁）または closed（臨時閉庁）を指定してください")
    span: TimeRange | None = None
    if hours:
        try:
            span = TimeRange.model_validate(hours)
        except ValueError as exc:
            raise OverrideInputError(f"時間帯「{hours}」が正しくありません（例: 09:00-17:00）") from exc
    if kind == "open" and span is None:
        raise OverrideInputError("臨時開庁には時間帯（例: 09:00-17:00）が必要です")
    if not reason.strip():
        raise OverrideInputError("理由を入力してください")
    today = dt.datetime.now(JST).date()
    if on_date < today:
        raise OverrideInputError(f"過去の日付（{on_date.isoformat()}）は変更できません")
    row = CalendarOverride(
        on_date=on_date,
        kind=kind,
        opens_min=span.start if span else None,
        closes_min=span.end if span else None,
        reason=reason.strip(),
        created_by=entered_by,
    )
    session.add(row)
    session.flush()
    return row


def revoke_override(session: Session, override_id: int, revoked_by: str) -> CalendarOverride:
    row = session.get(CalendarOverride, override_id)
    if row is None or row.revoked_at is not None:
        raise OverrideInputError(f"臨時開庁・閉庁 {override_id} は見つからないか、取り消し済みです")
    row.revoked_at = dt.datetime.now(dt.UTC)
    row.revoked_by = revoked_by
    session.flush()
    return row

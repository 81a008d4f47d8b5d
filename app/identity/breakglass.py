"""Break-glass: provider staff read a city's data only with the city's approval, for a limited time.

Seed 000 §11: the contractor must not browse personal data held in the system, except information
the city has permitted for inquiries or incident handling. So:

1. provider staff request access at ``/ops/`` (city, reason, permissions, duration);
2. the city's administrator (``admin.breakglass``) approves or rejects it at ``/<tenant>/admin/breakglass``;
   the clock starts at approval;
3. while the grant is in force the provider's session reaches that city's routes with the granted
   permissions only; every request is logged, and the city lists them per grant (``audit.read``);
4. at ``expires_at`` (or when the city revokes it) the grant reads nothing: the guard answers 404.

Grants live in the city's schema, so the city's database role guards them like the rest of its data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db.base import utcnow
from app.identity.models import BreakglassGrant
from app.identity.permissions import BREAKGLASS_PERMISSIONS

DURATIONS_MINUTES = (30, 60, 120, 240, 480)


class GrantInputError(ValueError):
    """Invalid request or decision; Japanese message."""


def request_grant(
    session: Session,
    *,
    provider_id: str,
    provider_name: str,
    reason: str,
    scope: Iterable[str],
    duration_minutes: int,
) -> BreakglassGrant:
    permissions = sorted(set(scope))
    if not permissions:
        raise GrantInputError("必要な権限を1つ以上選んでください")
    outside = sorted(set(permissions) - set(BREAKGLASS_PERMISSIONS))
    if outside:
        raise GrantInputError(f"緊急アクセスでは付与できない権限です: {', '.join(outside)}")
    if len(reason.strip()) < 10:
        raise GrantInputError("理由（問い合わせ番号・障害の内容など）を10文字以上で具体的に入力してください")
    if duration_minutes not in DURATIONS_MINUTES:
        raise GrantInputError(f"期間は {', '.join(str(d) for d in DURATIONS_MINUTES)} 分から選んでください")
    grant = BreakglassGrant(
        provider_id=provider_id,
        provider_name=provider_name,
        reason=reason.strip(),
        scope=permissions,
        duration_minutes=duration_minutes,
        status="requested",
        requested_at=utcnow(),
    )
    session.add(grant)
    session.flush()
    return grant


def _pending(session: Session, grant_id: int) -> BreakglassGrant:
    grant = session.get(BreakglassGrant, grant_id, with_for_update=True)
    if grant is None:
        raise GrantInputError("申請が見つかりません")
    if grant.status != "requested":
        raise GrantInputError("この申請は既に処理されています")
    return grant


def approve(
    session: Session, grant_id: int, *, by: str, by_name: str, note: str = "", now: dt.datetime | None = None
) -> BreakglassGrant:
    grant = _pending(session, grant_id)
    now = now or utcnow()
    grant.status = "approved"
    grant.decided_at = grant.approved_at = now
    grant.expires_at = now + dt.timedelta(minutes=grant.duration_minutes)
    grant.decided_by, grant.decided_by_name, grant.decision_note = by, by_name, note.strip() or None
    session.flush()
    return grant


def reject(session: Session, grant_id: int, *, by: str, by_name: str, note: str = "") -> BreakglassGrant:
    grant = _pending(session, grant_id)
    grant.status = "rejected"
    grant.decided_at = utcnow()
    grant.decided_by, grant.decided_by_name, grant.decision_note = by, by_name, note.strip() or None
    session.flush()
    return grant


def revoke(session: Session, grant_id: int, *, by: str, by_name: str) -> BreakglassGrant:
    """End an approved grant now (the city changed its mind, or the work is done)."""
    grant = session.get(BreakglassGrant, grant_id, with_for_update=True)
    now = utcnow()
    if grant is None or not grant.active_at(now):
        raise GrantInputError("有効な緊急アクセスが見つかりません")
    grant.status = "revoked"
    grant.expires_at = now
    grant.decision_note = f"{grant.decision_note or ''}（{by_name} が終了）".strip()
    session.flush()
    return grant


def active_grant(session: Session, provider_id: str, now: dt.datetime) -> BreakglassGrant | None:
    """The provider's grant in force at ``now`` in this city, if any (latest expiry first)."""
    return session.scalar(
        select(BreakglassGrant)
        .where(
            BreakglassGrant.provider_id == provider_id,
            BreakglassGrant.status == "approved",
            BreakglassGrant.approved_at <= now,
            BreakglassGrant.expires_at > now,
        )
        .order_by(BreakglassGrant.expires_at.desc())
        .limit(1)
    )


def list_grants(session: Session, provider_id: str | None = None, limit: int = 200) -> list[BreakglassGrant]:
    stmt = select(BreakglassGrant).order_by(BreakglassGrant.id.desc()).limit(limit)
    if provider_id is not None:
        stmt = stmt.where(BreakglassGrant.provider_id == provider_id)
    return list(session.scalars(stmt))


def reads_under(session: Session, grant: BreakglassGrant, limit: int = 1000) -> list[AuditEntry]:
    """Everything the provider did in this city under the grant (operation log).

    Every request admitted or refused under a grant writes ``breakglass.access`` naming the grant;
    entries of the same requests (the searches and views themselves) are found by request id, so
    the listing does not depend on clocks.
    """
    mine = and_(AuditEntry.actor_type == "provider", AuditEntry.actor_id == grant.provider_id)
    of_grant = and_(AuditEntry.subject_type == "breakglass_grant", AuditEntry.subject_id == str(grant.id))
    requests = select(AuditEntry.request_id).where(mine, of_grant, AuditEntry.request_id.is_not(None))
    return list(
        session.scalars(
            select(AuditEntry)
            .where(mine, or_(of_grant, AuditEntry.request_id.in_(requests.scalar_subquery())))
            .order_by(AuditEntry.id)
            .limit(limit)
        )
    )

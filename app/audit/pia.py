"""Access history of one resident (特定個人情報保護評価・PIA): who saw their data, when, where, why.

An access is an entry whose subject is the resident, or whose details list the resident among
the people shown: search results (``results``), household members shown (``members_shown``) and
the members a guidance covered (``members``). New code that shows several residents at once lists
their ids under one of ``RESIDENT_LIST_KEYS`` so they appear here. Reading this history is itself
recorded (after the query, so the read does not list itself).

Only entries still in the database are listed; older ones are in the archives
(``app.audit.archive``) for the rest of their retention.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.audit.service import record
from app.dates import JST

RESIDENT_LIST_KEYS = {
    "results": "検索結果に表示",
    "members_shown": "世帯員として表示",
    "members": "手続案内の対象",
}
MAX_LIMIT = 5000

# Every action ``record()`` is called with (tests/test_audit_coverage.py reads them from the code),
# as the access history and its CSV show it to the city.
ACTION_JA = {
    # residents and guidance
    "resident.search": "住民検索",
    "resident.view": "住民情報の表示",
    "guidance.determined": "手続案内の判定",
    # the counter
    "ticket.issued": "番号札の発行",
    "ticket.called": "番号札の呼出",
    "case.opened": "窓口案件の開始",
    "case.identified": "本人確認",
    "case.handed_over": "担当課への回付",
    "case.paused": "窓口案件の中断",
    "case.resumed": "窓口案件の再開",
    "case.closed": "窓口案件の完了",
    "case.search": "窓口案件の検索",
    "case.queue": "担当課の処理待ちの表示",
    "procedure.start": "手続きの着手",
    "procedure.done": "手続きの完了",
    "procedure.cancel": "手続きの取消",
    "procedure.reopen": "手続きの差戻し",
    "card.read": "マイナンバーカードの読取",
    "card.shown": "カード読取結果の表示",
    "card_reader.registered": "カード読取装置の登録",
    "card_reader.revoked": "カード読取装置の失効",
    "preapplication.used": "事前申請の読込",
    "preapplication.purged": "期限切れの事前申請の削除",
    # forms and applications
    "form.filled": "申請書の作成",
    "form.printed": "申請書の印刷",
    "form.draft_saved": "様式の下書き保存",
    "form.approved": "様式の承認",
    "form.withdrawn": "様式の取下げ",
    "application.submitted": "申請の登録",
    "application.viewed": "申請の表示",
    "application.pdf_read": "申請書PDFの表示",
    "application.signed": "申請書への署名",
    "application.accepted": "申請の受理",
    "applications.listed": "申請の一覧表示",
    "certificate.requested": "証明書の請求",
    # front linkage
    "linkage.rejections_viewed": "取込不可行の表示",
    "webhook.resent": "Webhook 通知の再送",
    "webhook.tested": "Webhook 通知の送信テスト",
    # staff, groups, API clients, sign-in
    "auth.login": "ログイン",
    "auth.login_failed": "ログインの失敗",
    "auth.totp_enrolled": "ワンタイムパスワードの登録",
    "auth.totp_failed": "ワンタイムパスワードの誤り",
    "auth.oidc_refused": "庁内認証の拒否",
    "auth.logout": "ログアウト",
    "auth.oidc_unknown": "未登録の利用者による庁内認証",
    "auth.password_changed": "パスワードの変更",
    "staff.created": "職員アカウントの作成",
    "staff.disabled": "職員アカウントの無効化",
    "staff.enabled": "職員アカウントの有効化",
    "staff.groups_changed": "職員の所属グループの変更",
    "staff.oidc_linked": "庁内認証との関連付け",
    "staff.password_reset": "パスワードの再設定",
    "staff.totp_reset": "ワンタイムパスワードの再設定",
    "group.created": "グループの作成",
    "group.deleted": "グループの削除",
    "group.permissions_changed": "グループの権限の変更",
    "api.client_created": "APIクライアントの発行",
    "api.client_revoked": "APIクライアントの失効",
    "api.token_issued": "APIアクセストークンの発行",
    # provider access and the log itself
    "breakglass.requested": "事業者の緊急アクセスの申請",
    "breakglass.access": "事業者の緊急アクセスによる参照",
    "breakglass.approved": "事業者の緊急アクセスの承認",
    "breakglass.rejected": "事業者の緊急アクセスの却下",
    "breakglass.revoked": "事業者の緊急アクセスの取消",
    "audit.verified": "操作ログの検証",
    "tenant.exported": "契約終了時のデータ一式の書き出し",
    "audit.archived": "操作ログの保管庫への移動",
    "audit.breakglass_reads_viewed": "緊急アクセスの参照記録の閲覧",
    "audit.resident_accesses_viewed": "アクセス履歴の閲覧",
    "audit.resident_accesses_exported": "アクセス履歴のCSV出力",
}
ACTOR_JA = {
    "staff": "職員",
    "provider": "事業者",
    "api_client": "外部システム",
    "system": "システム",
    "device": "端末",
    "resident": "住民",
    "cli": "運用コマンド",
}
CSV_HEADER = (
    "連番", "日時（日本時間）", "操作", "操作コード", "関係", "操作者種別", "操作者ID", "操作者名", "端末",
    "事務種別", "対象種別", "対象ID", "リクエストID", "詳細",
)  # fmt: skip


@dataclass(frozen=True)
class Access:
    seq: int
    at: dt.datetime
    action: str
    relation: str  # 本人が対象 / 検索結果に表示 / ...
    actor_type: str
    actor_id: str
    actor_name: str | None
    terminal: str | None
    purpose: str | None
    subject_type: str | None
    subject_id: str | None
    request_id: str | None
    details: dict[str, Any]

    @property
    def at_jst(self) -> str:
        return self.at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def action_ja(self) -> str:
        return ACTION_JA.get(self.action, self.action)

    @property
    def actor_type_ja(self) -> str:
        return ACTOR_JA.get(self.actor_type, self.actor_type)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "action": self.action,
            "action_ja": self.action_ja,
            "relation": self.relation,
            "actor": {"type": self.actor_type, "id": self.actor_id, "name": self.actor_name},
            "terminal": self.terminal,
            "purpose": self.purpose,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "request_id": self.request_id,
            "details": self.details,
        }


@dataclass(frozen=True)
class AccessHistory:
    resident_id: int
    accesses: list[Access]
    more: bool  # older accesses beyond the limit (ask again with before_seq)


def _relation(entry: AuditEntry, resident_id: int) -> str:
    if entry.subject_type == "resident" and entry.subject_id == str(resident_id):
        return "本人が対象"
    for key, label in RESIDENT_LIST_KEYS.items():
        listed = entry.details.get(key) if isinstance(entry.details, dict) else None
        if isinstance(listed, list) and resident_id in listed:
            return label
    return "その他"


def _access(e: AuditEntry, resident_id: int) -> Access:
    return Access(
        e.seq, e.occurred_at, e.action, _relation(e, resident_id), e.actor_type, e.actor_id, e.actor_name,
        e.terminal, e.purpose, e.subject_type, e.subject_id, e.request_id, e.details,
    )  # fmt: skip


def resident_accesses(
    session: Session,
    resident_id: int,
    *,
    purpose: str | None = None,
    limit: int = 500,
    before_seq: int | None = None,
    export: bool = False,
) -> AccessHistory:
    """Newest first; records the read (``export``: a CSV download) in the caller's transaction."""
    limit = max(1, min(limit, MAX_LIMIT))
    matches = [and_(AuditEntry.subject_type == "resident", AuditEntry.subject_id == str(resident_id))]
    matches += [AuditEntry.details.contains({key: [resident_id]}) for key in RESIDENT_LIST_KEYS]
    stmt = select(AuditEntry).where(or_(*matches))
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    entries = list(session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(entries) > limit
    accesses = [_access(e, resident_id) for e in entries[:limit]]
    record(
        session,
        "audit.resident_accesses_exported" if export else "audit.resident_accesses_viewed",
        subject_type="resident",
        subject_id=resident_id,
        purpose=purpose,
        details={"entries": len(accesses), "before_seq": before_seq},
    )
    return AccessHistory(resident_id, accesses, more)


def safe_cell(value: Any) -> str:
    """A CSV cell Excel shows as text: formulas (= + - @), TAB and CR at the start are quoted with
    an apostrophe, NUL becomes U+FFFD."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "\ufffd")
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(accesses: Iterable[Access]) -> bytes:
    """UTF-8 with a BOM (Excel then reads it as UTF-8), CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for a in accesses:
        writer.writerow(
            safe_cell(v)
            for v in (
                a.seq, a.at_jst, a.action_ja, a.action, a.relation, a.actor_type_ja, a.actor_id, a.actor_name,
                a.terminal, a.purpose, a.subject_type, a.subject_id, a.request_id,
                json.dumps(a.details, ensure_ascii=False, sort_keys=True),
            )
        )  # fmt: skip
    return ("\ufeff" + out.getvalue()).encode("utf-8")

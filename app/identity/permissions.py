"""Named capabilities (権限), API scopes and the declaration every tenant view must carry.

A view says what it needs with ``@requires("residents.search")`` (all listed permissions needed),
``@signed_in`` (any principal the tenant guard admits) or ``@public_endpoint`` (no principal). The
tenant guards call :func:`authorize` for every request; a view without a declaration is refused
(403) and ``tests/test_authorization_matrix.py`` fails, so a new route cannot skip the check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Permission:
    name: str
    label: str  # Japanese, for the admin UI
    personal_data: bool = False  # reads residents' personal data
    privileged: bool = False  # administration: TOTP where the city asks it for privileged staff


PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in (
        Permission("calendar.view", "開庁カレンダー・自治体情報の参照"),
        Permission("residents.search", "住民検索", personal_data=True),
        Permission("residents.view", "住民・世帯の詳細の参照", personal_data=True),
        Permission("guidance.use", "手続き案内・手続案内書の作成", personal_data=True),
        Permission("counter.reception", "受付・番号札の発行・呼出表示"),
        Permission("counter.cases", "窓口の案件（本人確認・手続き案内・回付・再開）", personal_data=True),
        Permission("counter.queue", "担当課の処理待ちと手続きの完了", personal_data=True),
        Permission("counter.supervise", "窓口の状況（待ち時間・処理時間）の参照"),
        Permission("forms.use", "申請書の作成・印刷・申請の登録と参照", personal_data=True),
        Permission("forms.accept", "申請の受理（基幹システムへの連携の開始）", personal_data=True),
        Permission("forms.sign", "ペンタブレットでの署名（署名する様式の表示）", personal_data=True),
        Permission("linkage.batches.view", "取込バッチの一覧・結果の参照"),
        Permission("linkage.rejections.view", "取込不可行（個人情報を含む）の参照", personal_data=True),
        Permission("linkage.import", "住民記録の取込の実行", privileged=True),
        Permission("webhooks.events.view", "Webhook で通知したイベント（番号のみ）の参照"),
        Permission("admin.users", "職員アカウントの管理", privileged=True),
        Permission("admin.groups", "グループと権限の管理", privileged=True),
        Permission("admin.calendar", "臨時開庁・臨時閉庁の登録", privileged=True),
        Permission("admin.forms", "様式の編集・承認", privileged=True),
        Permission("admin.devices", "カード読取装置の登録・失効", privileged=True),
        Permission("admin.breakglass", "事業者の緊急アクセスの承認", privileged=True),
        Permission("admin.webhooks", "外部システムへのイベント通知（Webhook）の確認・再送", privileged=True),
        Permission("audit.read", "操作ログ・緊急アクセスの閲覧記録の参照", privileged=True),
        Permission("reports.view", "月次利用報告（ガバメントクラウド利用状況）の参照"),
    )
}

# What provider staff may be granted for an investigation (break-glass): reads only, never admin.
BREAKGLASS_PERMISSIONS: tuple[str, ...] = (
    "calendar.view",
    "residents.search",
    "residents.view",
    "linkage.batches.view",
    "linkage.rejections.view",
)

# OAuth2 scopes for API clients, each a fixed set of permissions. No scope reaches administration.
SCOPES: dict[str, tuple[str, ...]] = {
    "tenant.read": ("calendar.view",),
    "residents.read": ("residents.search", "residents.view"),
    "guidance": ("guidance.use",),
    "linkage.read": ("linkage.batches.view", "linkage.rejections.view"),
    "counter": ("counter.reception", "counter.cases", "counter.queue"),
    "forms": ("forms.use", "forms.accept"),
    "webhooks": ("webhooks.events.view",),
}
SCOPE_LABELS = {
    "tenant.read": "自治体情報・開庁カレンダー",
    "residents.read": "住民の検索・参照",
    "guidance": "手続き案内",
    "linkage.read": "取込バッチの参照",
    "counter": "窓口の案件・番号札・担当課の処理（行政CRM・ポータル連携）",
    "forms": "申請書の作成・申請の登録と受理",
    "webhooks": "Webhook で通知したイベントの取り直し（番号のみ）",
}


def unknown_permissions(names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(PERMISSIONS))


def permissions_for_scopes(scopes: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for scope in scopes:
        out.update(SCOPES.get(scope, ()))
    return frozenset(out)


def is_privileged(permissions: Iterable[str]) -> bool:
    return any(PERMISSIONS[p].privileged for p in permissions if p in PERMISSIONS)


# --- declarations on views ---------------------------------------------------------------------

_ATTR = "_madoguchi_requires"
SIGNED_IN: frozenset[str] = frozenset()


def requires(*permissions: str) -> Callable[[F], F]:
    """Declare the permissions a view needs (all of them)."""
    unknown = unknown_permissions(permissions)
    if unknown or not permissions:
        raise ValueError(f"requires(): unknown or no permissions {unknown}")

    def mark(view: F) -> F:
        setattr(view, _ATTR, frozenset(permissions))
        return view

    return mark


def signed_in(view: F) -> F:
    """Declare a view open to every principal the tenant guard admits (home page, logout)."""
    setattr(view, _ATTR, SIGNED_IN)
    return view


def declared(view: Callable[..., Any] | None) -> frozenset[str] | None:
    """The view's declared permissions; None when it declares nothing (refused)."""
    value = getattr(view, _ATTR, None)
    return value if isinstance(value, frozenset) else None

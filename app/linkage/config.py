"""``tenants/<id>/linkage.yaml``: adapters (where files come from) and layouts (what they look like).

The standard layout is shared/domain/residents.md; a tenant's layout maps its core vendor's file
onto it (column names, encoding, delimiter, date style, check digits, private-use 外字 → MJ+ map,
how a file name tells a full extract from a changes file). Secrets are references only
(``env:NAME``), never values.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from app.dates.japanese import DateStyle
from app.validation import StrictModel

RESIDENT_COLUMNS: tuple[str, ...] = (
    "宛名番号",
    "世帯番号",
    "世帯内順",
    "氏名",
    "氏名フリガナ",
    "フリガナ確認",
    "旧氏",
    "生年月日",
    "性別",
    "続柄",
    "郵便番号",
    "住所",
    "方書",
    "住民となった日",
    "住定日",
    "住民状態",
    "住民種別",
    "異動事由",
    "異動日",
    "更新日時",
)
# Columns a file may leave out entirely (values then empty).
OPTIONAL_RESIDENT_COLUMNS = frozenset(
    {"旧氏", "方書", "郵便番号", "住民となった日", "住定日", "異動事由", "更新日時"}
)
ATTRIBUTE_COLUMNS: tuple[str, ...] = ("宛名番号", "項目", "値", "開始日", "終了日")
OPTIONAL_ATTRIBUTE_COLUMNS = frozenset({"開始日", "終了日"})

FileKind = Literal["residents", "attributes"]
Encoding = Literal["utf-8", "utf-8-sig", "cp932"]
SecretRef = Annotated[str, Field(pattern=r"^(env|aws-sm|file):[A-Za-z0-9_./:@+-]+$")]


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


Regex = Annotated[str, Field(min_length=1)]


class CheckDigits(StrictModel):
    """Modulus 11, weights 2..7 from the right; check = 11 - remainder, remainder 0 gives 0."""

    atena_no: bool = False
    household_no: bool = False
    remainder_one: Literal["zero", "reject"] = Field(
        default="reject", description="remainder 1 gives 10: write 0 (zero) or never issued (reject)"
    )


class FileMode(StrictModel):
    pattern: Regex
    mode: Literal["full", "changes"]

    _regex = field_validator("pattern")(_check_regex)


class Layout(StrictModel):
    """How one kind of file looks at this tenant."""

    variant: str = Field(min_length=1, description="name shown in batch records, e.g. gobo-cokas-r-v1")
    encoding: Encoding = "utf-8"
    delimiter: Literal[",", "\t", "|", ";"] = ","
    header: bool = True
    date_style: DateStyle = "auto"
    columns: dict[str, str] = Field(
        default_factory=dict, description="standard column name -> the name in this tenant's file"
    )
    check_digits: CheckDigits = CheckDigits()
    gaiji: dict[str, str] = Field(
        default_factory=dict, description="private-use character (U+E000-U+F8FF) -> MJ+ character(s)"
    )
    modes: list[FileMode] = Field(default_factory=list, description="first matching file-name pattern wins")
    default_mode: Literal["full", "changes"] = "full"

    @field_validator("gaiji")
    @classmethod
    def _private_use_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, target in value.items():
            if len(key) != 1 or not 0xE000 <= ord(key) <= 0xF8FF:
                raise ValueError(f"gaiji keys must be single private-use characters, got {key!r}")
            if not target or any(0xE000 <= ord(c) <= 0xF8FF for c in target):
                raise ValueError(f"gaiji target for U+{ord(key):04X} must be MJ+ characters, got {target!r}")
        return value

    def mode_for(self, file_name: str) -> Literal["full", "changes"]:
        for rule in self.modes:
            if re.search(rule.pattern, file_name):
                return rule.mode
        return self.default_mode

    def header_for(self, standard: str) -> str:
        return self.columns.get(standard, standard)


class ResidentsLayout(Layout):
    @model_validator(mode="after")
    def _known_columns(self) -> Self:
        _check_columns(self.columns, RESIDENT_COLUMNS)
        return self


class AttributesLayout(Layout):
    @model_validator(mode="after")
    def _known_columns(self) -> Self:
        _check_columns(self.columns, ATTRIBUTE_COLUMNS)
        return self


def _check_columns(columns: dict[str, str], standard: tuple[str, ...]) -> None:
    unknown = sorted(set(columns) - set(standard))
    if unknown:
        raise ValueError(f"unknown standard column(s) {unknown}; known: {', '.join(standard)}")
    targets = list(columns.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise ValueError(f"two standard columns map to the same file column: {dupes}")


class AdapterBase(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    purpose: FileKind
    pattern: Regex = Field(default=r".*", description="file names (base names) this adapter takes")
    poll_minutes: int = Field(default=10, ge=1, le=1440)

    _regex = field_validator("pattern")(_check_regex)


class S3Adapter(AdapterBase):
    """Objects in a bucket under a prefix (the core system's nightly extract)."""

    kind: Literal["s3"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = ""
    region: str = "ap-northeast-1"
    endpoint_url: str | None = Field(
        default=None, description="None: AWS, or MADOGUCHI_S3_ENDPOINT_URL locally"
    )
    access_key_ref: SecretRef | None = None
    secret_key_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _both_keys(self) -> Self:
        if (self.access_key_ref is None) != (self.secret_key_ref is None):
            raise ValueError("give both access_key_ref and secret_key_ref, or neither (instance role)")
        return self


class LocalAdapter(AdapterBase):
    """A directory on the server (files carried in by hand, or a mounted share)."""

    kind: Literal["local"]
    directory: str = Field(min_length=1)


class HttpAuth(StrictModel):
    type: Literal["none", "bearer", "basic"] = "none"
    token_ref: SecretRef | None = None
    username: str | None = None
    password_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.type == "bearer" and not self.token_ref:
            raise ValueError("bearer auth needs token_ref")
        if self.type == "basic" and not (self.username and self.password_ref):
            raise ValueError("basic auth needs username and password_ref")
        return self


class HttpAdapter(AdapterBase):
    """A core system that offers an extract over HTTP (GET returns the CSV)."""

    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    auth: HttpAuth = HttpAuth()
    timeout_seconds: int = Field(default=300, ge=1, le=3600)


AdapterConfig = Annotated[S3Adapter | LocalAdapter | HttpAdapter, Field(discriminator="kind")]


_OUTBOUND_VALUE = re.compile(
    r"^(application\.(id|accepted_at|created_at|form_id|form_version|case_ref)|field\.[a-z][a-z0-9_]*"
    r"|member\.(name|kana|birth|sex|relation|atena_no)|row|const:.*)$"
)


class OutboundColumn(StrictModel):
    """One CSV column: where its value comes from (``field.applicant_name``, ``member.name`` …)."""

    name: str = Field(min_length=1)
    value: str

    @field_validator("value")
    @classmethod
    def _known(cls, value: str) -> str:
        if not _OUTBOUND_VALUE.fullmatch(value):
            raise ValueError(f"unknown column value {value!r}")
        return value


class OutboundTarget(StrictModel):
    """Back linkage (後方連携): accepted applications of some forms → CSV in object storage.

    ``rows: members`` writes one row per member of the form's member table — the layout an RPA
    scenario on the core side types in, one person at a time.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    kind: Literal["s3"] = "s3"
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = ""
    region: str = "ap-northeast-1"
    endpoint_url: str | None = None
    access_key_ref: SecretRef | None = None
    secret_key_ref: SecretRef | None = None
    forms: list[str] = Field(min_length=1)
    rows: Literal["application", "members"] = "application"
    member_table: str | None = None
    encoding: Encoding = "utf-8"
    delimiter: Literal[",", "\t"] = ","
    header: bool = True
    columns: list[OutboundColumn] = Field(min_length=1)
    file_name: str = Field(default="{target}_{date}_{batch:06d}.csv", description="{target} {date} {batch}")
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    manifest: bool = True

    @model_validator(mode="after")
    def _member_rows(self) -> Self:
        if (self.rows == "members") != (self.member_table is not None):
            raise ValueError("rows: members needs member_table (and only then)")
        uses_member = any(c.value.startswith("member.") for c in self.columns)
        if uses_member and self.rows != "members":
            raise ValueError("member.* columns need rows: members")
        try:
            self.file_name.format(target="t", date="20260101", batch=1)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"file_name {self.file_name!r}: {exc}") from exc
        return self


# Events other systems may subscribe to (signed webhooks, app/linkage/webhooks.py). Each carries ids
# only, never personal data: the receiver reads what it needs through the API, which is audited.
WEBHOOK_EVENTS: dict[str, str] = {
    "application.submitted": "申請の登録",
    "application.accepted": "申請の受理",
    "case.handed_over": "案件の回付",
    "case.closed": "案件の完了",
    "procedure.done": "担当課での手続きの完了",
    "import.finished": "住民記録の取込の終了",
}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class WebhookEndpoint(StrictModel):
    """A receiver of signed event notifications (Standard Webhooks: ``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature`` = HMAC-SHA256 with the endpoint's secret)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    url: str = Field(max_length=2000)
    secret_ref: SecretRef
    events: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"webhook url must be an absolute https URL, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("webhook url must not carry credentials (the signature authenticates)")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            raise ValueError(f"webhook url must use https (http only on loopback), got {value!r}")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(f"unknown webhook events {unknown}; known: {sorted(WEBHOOK_EVENTS)}")
        if len(set(value)) != len(value):
            raise ValueError("webhook events are listed twice")
        return value


class LinkageConfig(StrictModel):
    policy: Literal["reject_all", "quarantine"] = Field(
        default="reject_all", description="reject the whole file on any error, or apply valid rows"
    )
    max_reported_rejections: int = Field(default=10_000, ge=100, le=1_000_000)
    residents: ResidentsLayout = ResidentsLayout(variant="standard")
    attributes: AttributesLayout = AttributesLayout(variant="standard")
    adapters: list[AdapterConfig] = Field(default_factory=list)
    outbound: list[OutboundTarget] = Field(default_factory=list)
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_adapters(self) -> Self:
        names = (
            [a.name for a in self.adapters]
            + [t.name for t in self.outbound]
            + [w.name for w in self.webhooks]
        )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"adapter names must be unique: {dupes}")
        return self

    def layout(self, kind: FileKind) -> Layout:
        return self.residents if kind == "residents" else self.attributes


STANDARD = LinkageConfig()


class ResidentsConfig(StrictModel):
    """Search settings: the tenant's table of old/new character forms (異体字) for name search."""

    name_variants: dict[str, str] = Field(default_factory=dict)

    @field_validator("name_variants")
    @classmethod
    def _single_characters(cls, value: dict[str, str]) -> dict[str, str]:
        for old, new in value.items():
            if len(old) != 1 or len(new) != 1:
                raise ValueError(f"name_variants map one character to one character, got {old!r}: {new!r}")
        return value

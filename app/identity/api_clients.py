"""API clients: OAuth2 client credentials (Authlib) bound to one tenant, scopes mapped to permissions.

- ``madoguchi clients add`` registers a client in one tenant's schema and prints its secret once;
  only the SHA-256 of the secret is kept (256 random bits: a slow hash adds nothing).
- ``POST /api/v1/<tenant>/oauth/token`` (client_secret_basic or _post, grant_type=client_credentials)
  issues an access token ``mdg.<tenant>.<random>`` for the requested scopes (default: all of the
  client's); only its SHA-256 is stored, with the expiry.
- The API guard reads the tenant named in a token first: a token of another tenant gets the same 404
  as an unknown tenant, before any lookup. Revoking a client ends its tokens at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import Flask, current_app, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import Actor, record
from app.config import get_settings
from app.db.base import utcnow
from app.identity.models import ApiClient, ApiToken
from app.identity.permissions import SCOPES, permissions_for_scopes
from app.identity.principal import Principal

TOKEN_PREFIX = "mdg"  # noqa: S105 - a token prefix, not a secret


class ClientInputError(ValueError):
    """Invalid client input; Japanese message."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def claimed_tenant(token: str) -> str | None:
    """The tenant a token names (unverified): ``mdg.<tenant>.<random>``."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1]:
        return None
    return parts[1]


def new_access_token(tenant_id: str) -> str:
    return f"{TOKEN_PREFIX}.{tenant_id}.{secrets.token_urlsafe(32)}"


# --- registry (CLI) ----------------------------------------------------------------------------


def register_client(
    session: Session, tenant_id: str, name: str, scopes: list[str], created_by: str
) -> tuple[ApiClient, str]:
    if not name.strip():
        raise ClientInputError("クライアント名を入力してください")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ClientInputError(
            f"スコープ {', '.join(unknown) or '(なし)'} は使えません（使用できるスコープ: {', '.join(SCOPES)}）"
        )
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        client_id=f"{tenant_id}-{secrets.token_hex(8)}",
        name=name.strip(),
        secret_hash=_sha256(secret),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    session.add(client)
    session.flush()
    return client, secret


def revoke_client(session: Session, client_id: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    if client is None or client.revoked_at is not None:
        raise ClientInputError(f"クライアント {client_id!r} は見つからないか、既に無効です")
    client.revoked_at = utcnow()
    session.flush()
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.id)))


# --- tokens on API requests ---------------------------------------------------------------------


def token_principal(
    session: Session, tenant_id: str, token: str, now: dt.datetime | None = None
) -> Principal | None:
    """The API client behind a bearer token of ``tenant_id``; None if unknown, expired or revoked."""
    now = now or utcnow()
    row = session.execute(
        select(
            ApiToken.scopes, ApiToken.expires_at, ApiClient.client_id, ApiClient.name, ApiClient.revoked_at
        )
        .join(ApiClient, ApiClient.id == ApiToken.client_pk)
        .where(ApiToken.token_hash == _sha256(token))
    ).first()
    if row is None or row.expires_at <= now or row.revoked_at is not None:
        return None
    return Principal(
        "api_client",
        tenant_id,
        row.client_id,
        row.name,
        auth_method="client_credentials",
        permissions=permissions_for_scopes(row.scopes),
    )


# --- the token endpoint (Authlib) ---------------------------------------------------------------


@dataclass
class OAuthClient(ClientMixin):  # type: ignore[misc]
    row: ApiClient

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        allowed = set(self.row.scopes)
        if not scope:
            return " ".join(sorted(allowed))
        requested = scope.split()
        if not set(requested) <= allowed:
            return None  # Authlib answers invalid_scope
        return " ".join(sorted(set(requested)))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(_sha256(client_secret), self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


def _query_client(client_id: str) -> OAuthClient | None:
    from app.tenancy.context import tenant_db

    row = tenant_db().scalar(
        select(ApiClient).where(ApiClient.client_id == client_id, ApiClient.revoked_at.is_(None))
    )
    return OAuthClient(row) if row is not None else None


def _save_token(token: dict[str, Any], request: Any) -> None:
    from app.identity.context import terminal_of_request
    from app.tenancy.context import tenant_db

    db = tenant_db()
    client: OAuthClient = request.client
    now = utcnow()
    db.add(
        ApiToken(
            token_hash=_sha256(token["access_token"]),
            client_pk=client.row.id,
            scopes=str(token.get("scope", "")).split(),
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=int(token["expires_in"])),
        )
    )
    client.row.last_token_at = now
    record(
        db,
        "api.token_issued",
        details={"scope": token.get("scope", "")},
        actor=Actor("api_client", client.row.client_id, client.row.name, terminal_of_request()),
    )
    db.commit()


def _generate_access_token(client: Any, grant_type: str, user: Any, scope: str) -> str:
    return new_access_token(g.tenant.id)


def _expires_in(client: Any, grant_type: str) -> int:
    return get_settings().api_token_minutes * 60


def init_token_endpoint(app: Flask) -> None:
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.scopes_supported = list(SCOPES)
    server.register_token_generator(
        "default", BearerTokenGenerator(_generate_access_token, None, _expires_in)
    )
    server.register_grant(ClientCredentialsGrant)
    app.extensions["madoguchi_oauth"] = server


def token_response() -> Any:
    """The token endpoint's answer (RFC 6749 JSON, errors included), for the current request."""
    return current_app.extensions["madoguchi_oauth"].create_token_response()

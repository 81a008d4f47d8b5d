"""Sign-in through the city's own identity provider: OpenID Connect, authorization code + PKCE (Authlib).

- The provider's discovery document must name exactly the configured issuer; the ID token is checked
  with Authlib's ``CodeIDToken`` (signature from the provider's JWKS, ``iss``, ``aud``, ``exp``, nonce,
  ``at_hash``).
- The userinfo endpoint must answer for the same subject; a login without userinfo is refused.
- Staff are found by issuer + subject, never by e-mail (an address can be reassigned or spoofed at
  another provider). An unknown subject is refused: the administrator registers it first.
- The client secret is a reference (``env:NAME``) resolved at use, never stored in configuration.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.config import get_settings
from app.identity.config import OidcConfig
from app.secrets import SecretError, resolve

TIMEOUT = (3, 10)
METADATA_SECONDS = 600


class OidcError(Exception):
    """Refused login; the message is Japanese, for the login page (no secrets, no tokens)."""


@dataclass(frozen=True)
class OidcIdentity:
    issuer: str
    subject: str
    name: str | None


_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def _get_json(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=TIMEOUT)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def metadata(config: OidcConfig) -> dict[str, Any]:
    """The discovery document, cached for ten minutes; its issuer must be the configured one."""
    with _lock:
        cached = _metadata.get(config.issuer)
        if cached and time.monotonic() - cached[0] < METADATA_SECONDS:
            return cached[1]
    try:
        data = _get_json(config.issuer + "/.well-known/openid-configuration")
    except (requests.RequestException, ValueError) as exc:
        raise OidcError("認証基盤に接続できません。しばらくしてから再度お試しください。") from exc
    if data.get("issuer") != config.issuer:
        raise OidcError("認証基盤の発行者（issuer）が設定と一致しないため、ログインできません。")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(data.get(key), str):
            raise OidcError(f"認証基盤の設定情報に {key} がありません。")
    with _lock:
        _metadata[config.issuer] = (time.monotonic(), data)
    return data


def forget_metadata() -> None:
    with _lock:
        _metadata.clear()


def _check_transport(config: OidcConfig) -> None:
    if get_settings().env == "production" and not config.issuer.startswith("https://"):
        raise OidcError("認証基盤の URL は https でなければなりません。")


def _client(config: OidcConfig, redirect_uri: str) -> OAuth2Session:
    try:
        secret = resolve(config.client_secret)
    except SecretError as exc:
        raise OidcError(
            "認証基盤の設定（クライアントシークレット）に誤りがあります。管理者へ連絡してください。"
        ) from exc
    return OAuth2Session(
        client_id=config.client_id,
        client_secret=secret,
        scope=" ".join(config.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
    )


def start(config: OidcConfig, redirect_uri: str) -> tuple[str, dict[str, str]]:
    """(authorization URL, flow state to keep server-side until the callback)."""
    _check_transport(config)
    meta = metadata(config)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with _client(config, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    return url, {"state": state, "nonce": nonce, "verifier": verifier}


def finish(config: OidcConfig, flow: dict[str, str], args: dict[str, str], redirect_uri: str) -> OidcIdentity:
    """Check the callback, exchange the code, validate the ID token, require userinfo."""
    _check_transport(config)
    if args.get("error"):
        raise OidcError("認証基盤でログインが完了しませんでした。もう一度お試しください。")
    if not hmac.compare_digest(args.get("state", ""), flow.get("state", "")) or not args.get("code"):
        raise OidcError("ログインの手続きが正しくありません（時間切れ、または別の画面から戻りました）。")
    meta = metadata(config)
    try:
        with _client(config, redirect_uri) as client:
            token = client.fetch_token(
                meta["token_endpoint"],
                grant_type="authorization_code",
                code=args["code"],
                code_verifier=flow["verifier"],
                timeout=TIMEOUT,
            )
    except Exception as exc:  # Authlib raises OAuthError, requests its own; both mean "refused"
        raise OidcError("認証基盤からトークンを取得できませんでした。もう一度お試しください。") from exc
    access_token, id_token = token.get("access_token"), token.get("id_token")
    if not access_token or not id_token:
        raise OidcError("認証基盤が ID トークンを返さなかったため、ログインできません。")
    claims = _validate_id_token(config, meta, id_token, access_token, flow["nonce"])
    userinfo = _userinfo(meta, access_token)
    if userinfo.get("sub") != claims["sub"]:
        raise OidcError(
            "認証基盤の利用者情報（userinfo）が ID トークンと一致しないため、ログインできません。"
        )
    name = userinfo.get("name") or claims.get("name")
    return OidcIdentity(config.issuer, str(claims["sub"]), str(name) if name else None)


def _validate_id_token(
    config: OidcConfig, meta: dict[str, Any], id_token: str, access_token: str, nonce: str
) -> CodeIDToken:
    algorithms = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in algorithms if a != "none"]
    try:
        keys = KeySet.import_key_set(_get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
        decoded = jwt.decode(id_token, keys, algorithms=algorithms)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "values": [config.issuer]}, "sub": {"essential": True}},
            {"nonce": nonce, "client_id": config.client_id, "access_token": access_token},
        )
        claims.validate(leeway=60)
    except (JoseError, requests.RequestException, ValueError) as exc:
        raise OidcError("認証基盤の ID トークンを確認できなかったため、ログインできません。") from exc
    return claims


def _userinfo(meta: dict[str, Any], access_token: str) -> dict[str, Any]:
    endpoint = meta.get("userinfo_endpoint")
    refused = OidcError("認証基盤から利用者情報（userinfo）を取得できなかったため、ログインできません。")
    if not isinstance(endpoint, str):
        raise refused
    try:
        response = requests.get(
            endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT
        )
        if response.status_code != 200:
            raise refused
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise refused from exc
    if not isinstance(data, dict) or not data.get("sub"):
        raise refused
    return data

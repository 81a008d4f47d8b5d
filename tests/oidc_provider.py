"""A tiny but genuine OpenID Connect provider on loopback, built from Authlib's server components.

Discovery document, authorization endpoint (authorization code, PKCE required, consent skipped for
the one configured user), token endpoint (client_secret_basic, RS256 ID tokens from OpenIDCode),
JWKS and userinfo (UserInfoEndpoint behind a ResourceProtector). ``Provider`` has knobs to
misbehave: advertise another issuer, sign ID tokens with another ``iss``, or fail userinfo.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


@dataclass
class User:
    sub: str
    name: str


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    client_metadata: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = {"openid", "profile"}
        return " ".join(s for s in (scope or "openid").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return "0"

    def get_amr(self) -> list[str]:
        return ["pwd", "otp"]


@dataclass
class Token:
    access_token: str
    scope: str
    user: User
    client: Client
    expires_at: float

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Client:
        return self.client


class Provider:
    """Start with ``start()``; ``issuer`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str, user: User) -> None:
        self.client = Client(client_id, client_secret, [redirect_uri])
        self.user = user
        self.key = RSAKey.generate_key(2048, parameters={"kid": "loopback-1", "use": "sig"})
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.advertised_issuer: str | None = None  # None: the real one
        self.id_token_issuer: str | None = None
        self.userinfo_status = 200
        self.userinfo_sub: str | None = None
        self.seen_challenges: list[tuple[str | None, str | None]] = []
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Provider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        self.advertised_issuer = self.id_token_issuer = self.userinfo_sub = None
        self.userinfo_status = 200

    # --- the Flask app with Authlib's server components ---------------------------------------

    def _build(self) -> Flask:
        provider = self
        app = Flask("loopback_oidc")

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]  # noqa: RUF012

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                provider.seen_challenges.append(
                    (data.get("code_challenge"), data.get("code_challenge_method"))
                )
                provider.codes[code] = Code(
                    code,
                    req.client.client_id,
                    req.payload.redirect_uri,
                    req.scope,
                    req.user,
                    data.get("nonce"),
                    data.get("code_challenge"),
                    data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class IdToken(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "loopback-1"}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.id_token_issuer or provider.issuer, "aud": [client.client_id]}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return UserInfo(sub=user.sub, name=user.name)

        def query_client(client_id: str) -> Client | None:
            return provider.client if client_id == provider.client.client_id else None

        def save_token(token: dict[str, Any], req: Any) -> None:
            provider.tokens[token["access_token"]] = Token(
                token["access_token"], token.get("scope", ""), req.user, req.client, time.time() + 300
            )

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [CodeChallenge(required=True), IdToken(require_nonce=True)])

        class Validator(BearerTokenValidator):  # type: ignore[misc]
            def authenticate_token(self, token_string: str) -> Token | None:
                return provider.tokens.get(token_string)

        protector = ResourceProtector()
        protector.register_token_validator(Validator())

        class UserInfoView(UserInfoEndpoint):  # type: ignore[misc]
            def get_issuer(self) -> str:
                return provider.issuer

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return UserInfo(sub=provider.userinfo_sub or user.sub, name=user.name)

        server.register_endpoint(UserInfoView(resource_protector=protector))

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = provider.issuer
            return jsonify(
                issuer=provider.advertised_issuer or base,
                authorization_endpoint=f"{base}/authorize",
                token_endpoint=f"{base}/token",
                jwks_uri=f"{base}/jwks",
                userinfo_endpoint=f"{base}/userinfo",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic"],
            )

        @app.get("/authorize")
        def authorize() -> Any:
            # Consent skipped: the one user is already "signed in" at this provider.
            try:
                grant = server.get_consent_grant(end_user=provider.user)
            except OAuth2Error as error:
                return jsonify(error=error.error), 400
            return server.create_authorization_response(grant_user=provider.user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(keys=[provider.key.as_dict(private=False)])

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo() -> Any:
            if provider.userinfo_status != 200:
                return jsonify(error="temporarily_unavailable"), provider.userinfo_status
            return server.create_endpoint_response("userinfo")

        _ = request  # the Authlib integration reads flask.request itself
        return app

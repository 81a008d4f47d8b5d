"""OAuth2 token endpoint for API clients (client credentials, one tenant per client)."""

from __future__ import annotations

from typing import Any

from app.api import tenant_api
from app.identity.api_clients import token_response
from app.identity.limits import token_limits
from app.tenancy.context import public_endpoint


@tenant_api.route("/oauth/token", methods=["POST"])
@public_endpoint
@token_limits
def issue_token() -> Any:
    """アクセストークンの発行（OAuth 2.0 client credentials。client_secret_basic / client_secret_post）

    `grant_type=client_credentials` と任意の `scope`（空白区切り: tenant.read residents.read guidance
    linkage.read）を送ります。トークンはこの自治体の API にだけ使えます。
    """
    return token_response()

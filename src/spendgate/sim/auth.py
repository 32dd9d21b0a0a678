"""Authentication the way Bedrock's front door does it: SigV4 or a Bedrock API key.

``Authorization: Bearer <key>`` is checked against the account's API keys; anything else must be
a valid SigV4 signature (service ``bedrock``) by one of the account's access keys, within five
minutes of the simulator's clock. The region is the signature's scope (for API keys, the one in
the ``Host`` name when it is an AWS endpoint, else us-east-1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from spendgate.bedrock import sigv4
from spendgate.bedrock.modelids import is_valid_region
from spendgate.errors import AwsError
from spendgate.sim.account import Account

DEFAULT_REGION = "us-east-1"
_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.")


@dataclass(frozen=True, slots=True)
class Caller:
    arn: str
    region: str


def authenticate(
    request: Request, body: bytes, account: Account, now: datetime, *, service: str = "bedrock"
) -> Caller:
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return _bearer(authorization[7:].strip(), request, account)
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    verified = sigv4.verify(
        method=request.method,
        path=raw_path.decode("latin-1"),
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
        body=body,
        lookup=account.credentials_for,
        now=now,
        service=service,
        keys=account.signing_keys,
    )
    if not is_valid_region(verified.region):
        raise AwsError(
            "InvalidSignatureException", "Credential should be scoped to a valid region."
        )
    return Caller(account.access_keys[verified.access_key_id].arn, verified.region)


def _bearer(token: str, request: Request, account: Account) -> Caller:
    principal = account.api_keys.get(token)
    if principal is None:
        raise AwsError(
            "AccessDeniedException",
            "Authentication failed: Please make sure your API Key is valid.",
        )
    match = _HOST_REGION.match(request.headers.get("host", ""))
    region = match.group(1) if match and is_valid_region(match.group(1)) else DEFAULT_REGION
    return Caller(principal.arn, region)

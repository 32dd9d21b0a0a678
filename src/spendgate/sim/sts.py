"""The slice of AWS STS spendgate needs: ``AssumeRole``, so a role's session reaches Bedrock.

``POST /`` with a form-encoded ``Action=AssumeRole`` body, signed with SigV4 (service ``sts``)
by one of the account's access keys. The simulator trusts every role of its own account (no IAM
policy is simulated), issues temporary credentials (``ASIA…`` with a session token) valid for
``DurationSeconds`` (900–43200, default 3600) and then accepts them like any other key. Its
invocation logs name the session as ``arn:aws:sts::<account>:assumed-role/<role>/<session>``,
as AWS's do.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from spendgate.bedrock.sigv4 import Credentials
from spendgate.errors import AwsError
from spendgate.sim.account import Account, Principal

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_SESSION = re.compile(r"[\w+=,.@-]{2,64}")


def assume_role(account: Account, body: bytes, now: datetime) -> str:
    """Issue credentials for the form ``body``; the XML answer, or AwsError."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if form.get("Action") != "AssumeRole":
        raise AwsError("InvalidAction", f"Could not find operation {form.get('Action')!r}")
    role_arn, session = form.get("RoleArn", ""), form.get("RoleSessionName", "")
    match = _ROLE.fullmatch(role_arn)
    if match is None or match.group(1) != account.account_id:
        raise AwsError(
            "AccessDeniedException", f"Not authorized to perform sts:AssumeRole on {role_arn[:200]}"
        )
    if not _SESSION.fullmatch(session):
        raise AwsError("ValidationError", "RoleSessionName must be 2-64 characters of [\\w+=,.@-]")
    duration = int(form.get("DurationSeconds", "3600") or 3600)
    if not 900 <= duration <= 43200:
        raise AwsError("ValidationError", "DurationSeconds must be between 900 and 43200")
    creds = Credentials(
        "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), secrets.token_urlsafe(60)
    )
    arn = f"arn:aws:sts::{account.account_id}:assumed-role/{match.group(2)}/{session}"
    account.access_keys[creds.access_key_id] = Principal(arn, creds)
    expires = (now + timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<AssumeRoleResponse xmlns="{NS}"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{creds.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{escape(creds.secret_access_key)}</SecretAccessKey>"
        f"<SessionToken>{escape(creds.session_token or '')}</SessionToken>"
        f"<Expiration>{expires}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>AROA{secrets.token_hex(8).upper()}:{escape(session)}"
        f"</AssumedRoleId><Arn>{escape(arn)}</Arn></AssumedRoleUser></AssumeRoleResult>"
        f"<ResponseMetadata><RequestId>{secrets.token_hex(16)}</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    )


def error_xml(err: AwsError, request_id: str) -> str:
    kind = "Receiver" if err.is_fault else "Sender"
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>'
        f"<Message>{escape(err.message)}</Message></Error><RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    )

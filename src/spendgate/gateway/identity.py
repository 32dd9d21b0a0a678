"""Which AWS credentials sign a call — first match wins:

1. the request's own ``X-Aws-Access-Key-Id`` / ``X-Aws-Secret-Access-Key`` (/ ``-Session-Token``);
2. a role for the key, else for the call's team (project), assumed with the user (or key name)
   as RoleSessionName and the attribution as session tags, so CUR 2.0's
   ``line_item_iam_principal`` names the same owner;
3. the server's default credential chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from spendgate.bedrock.sigv4 import Credentials
from spendgate.errors import AwsError
from spendgate.gateway.credentials import (
    AwsIdentity,
    CredentialSource,
    RoleCache,
    from_headers,
    session_name,
    session_tags,
)
from spendgate.gateway.metering import Call
from spendgate.store.keys import KeyRecord

NO_CREDENTIALS = (
    "spendgate has no AWS credentials to sign this call with: send X-Aws-Access-Key-Id and "
    "X-Aws-Secret-Access-Key, give the key a role, or configure the server's credential chain"
)


class Identities:
    def __init__(
        self,
        roles: RoleCache,
        default: Callable[[], Credentials | None],
        *,
        team_roles: Mapping[str, str],
    ) -> None:
        self.roles = roles
        self.default = default
        self.team_roles = team_roles

    async def __call__(
        self, headers: Mapping[str, str], key: KeyRecord | None, call: Call
    ) -> AwsIdentity:
        creds = from_headers(headers)
        if creds is not None:
            return AwsIdentity(creds, CredentialSource.REQUEST)
        values = call.attribution.values
        role = (key.role_arn if key else None) or self.team_roles.get(values.get("project", ""))
        if role:
            name = session_name(values.get("user_id"), key.name if key else None)
            external_id = key.external_id if key else None
            return await self.roles.assume(
                role, name, session_tags(values), external_id=external_id
            )
        base = self.default()
        if base is None:
            raise AwsError("AccessDeniedException", NO_CREDENTIALS)
        return AwsIdentity(base, CredentialSource.DEFAULT)

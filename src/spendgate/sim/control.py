"""The slice of Bedrock's control plane spendgate needs: application inference profiles.

``GET /inference-profiles/{id or ARN}`` (GetInferenceProfile) and ``GET /inference-profiles``
(ListInferenceProfiles, ``type=APPLICATION``) over the account file's application profiles, with
the same SigV4 check as the runtime (service ``bedrock``). The gateway uses GetInferenceProfile to
learn which model an application-inference-profile ARN runs, for pricing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from spendgate.bedrock.modelids import parse_model_id
from spendgate.errors import AwsError
from spendgate.sim.account import Account
from spendgate.sim.routing import GEO_REGIONS

CREATED = "2026-01-01T00:00:00Z"


def profile_summary(arn: str, target: str) -> dict[str, Any]:
    ref = parse_model_id(arn)
    region = ref.region or "us-east-1"
    underlying = parse_model_id(target)
    regions = GEO_REGIONS.get(underlying.geo, (region,)) if underlying.geo else (region,)
    base = underlying.base_model or target
    profile_id = ref.resource_id or arn.rsplit("/", 1)[-1]
    return {
        "inferenceProfileName": f"sim-{profile_id}",
        "description": f"Simulated application inference profile for {target}",
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "inferenceProfileArn": arn,
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{base}"} for r in regions],
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": "APPLICATION",
    }


def get_profile(account: Account, identifier: str, region: str) -> dict[str, Any]:
    wanted = unquote(identifier)
    for arn, target in account.app_profiles.items():
        if wanted == arn or (arn.split(":")[3] == region and arn.endswith("/" + wanted)):
            return profile_summary(arn, target)
    raise AwsError("ResourceNotFoundException", f"Inference profile {wanted[:200]} not found.")


def list_profiles(account: Account, region: str) -> dict[str, Any]:
    summaries = [
        profile_summary(arn, target)
        for arn, target in account.app_profiles.items()
        if arn.split(":")[3] == region
    ]
    return {"inferenceProfileSummaries": summaries}

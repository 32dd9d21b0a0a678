"""Which model a request names, and where it would run: Bedrock's resolution rules.

A system inference profile (``us.``, ``eu.`` ...) is usable only from a region of its geography
(``global.`` from anywhere); a ``profile_only`` model called by its bare id fails with the
on-demand-throughput error Bedrock returns; ARNs must name the caller's region; application
inference profiles resolve through the account file. The inference region of a cross-region
call is picked deterministically from the geography's regions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from spendgate.bedrock.modelids import ModelKind, ModelRef, geo_for_region, parse_model_id
from spendgate.errors import AwsError
from spendgate.sim.models import SimModel

GEO_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "ca": ("ca-central-1", "ca-west-1"),
    "in": ("ap-south-1", "ap-south-2"),
    "us-gov": ("us-gov-west-1", "us-gov-east-1"),
    "global": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"),
}
INVALID_ID = "The provided model identifier is invalid."


@dataclass(frozen=True, slots=True)
class Target:
    model: SimModel
    ref: ModelRef  # the model or system profile that runs (after application-profile lookup)
    inference_region: str


def resolve(
    model_id: str,
    region: str,
    *,
    models: dict[str, SimModel],
    app_profiles: dict[str, str],
    request_id: str,
) -> Target:
    ref = parse_model_id(model_id)
    if ref.kind is ModelKind.APPLICATION_INFERENCE_PROFILE:
        _same_region(ref, region)
        underlying = app_profiles.get(model_id)
        if underlying is None:
            raise AwsError("ValidationException", INVALID_ID)
        ref = parse_model_id(underlying)
    elif ref.region is not None:
        _same_region(ref, region)
    if ref.kind not in (ModelKind.FOUNDATION, ModelKind.INFERENCE_PROFILE):
        raise AwsError("ValidationException", INVALID_ID)
    model = models.get(ref.base_model or "")
    if model is None:
        raise AwsError("ValidationException", INVALID_ID)
    if ref.geo is not None:
        if not geo_allowed(ref.geo, region):
            raise AwsError("ValidationException", INVALID_ID)
        choices = GEO_REGIONS.get(ref.geo, (region,))
        where = choices[zlib.crc32(request_id.encode()) % len(choices)]
        return Target(model, ref, where)
    if model.profile_only:
        raise AwsError(
            "ValidationException",
            f"Invocation of model ID {model.model_id} with on-demand throughput isn't supported. "
            "Retry your request with the ID or ARN of an inference profile that contains this "
            "model.",
        )
    return Target(model, ref, region)


def geo_allowed(geo: str, region: str) -> bool:
    if geo == "global":
        return True
    if geo in ("jp", "au", "ca", "in"):
        return region in GEO_REGIONS[geo]
    return geo == geo_for_region(region)


def _same_region(ref: ModelRef, region: str) -> None:
    if ref.region and ref.region != region:
        raise AwsError("ValidationException", INVALID_ID)

"""Which foundation model an application inference profile runs, for pricing.

An application-inference-profile ARN says nothing about its model, so the first call through one
asks Bedrock's control plane (``GET /inference-profiles/{ARN}``, GetInferenceProfile, SigV4
service ``bedrock`` in the ARN's region) and caches the answer: the foundation-model id behind
``models[].modelArn``. A profile that cannot be resolved is logged (ARN and error code) and
cached briefly as unknown; its calls are then recorded as unpriced, never priced wrong. A profile
that resolved before keeps its model when a refresh fails (a profile's model never changes), and
the refresh is retried after ``NEGATIVE_TTL``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from spendgate.bedrock.errors import parse_error_response
from spendgate.bedrock.modelids import (
    ModelKind,
    display_value,
    encode_model_id,
    is_valid_region,
    parse_model_id,
)
from spendgate.bedrock.sigv4 import Credentials, Signer
from spendgate.errors import AwsError, SpendgateError
from spendgate.gateway.credentials import ExpiringCache, HttpClient, signed_call

log = logging.getLogger(__name__)

NEGATIVE_TTL = timedelta(minutes=1)
_PROFILE_KINDS = (ModelKind.APPLICATION_INFERENCE_PROFILE, ModelKind.INFERENCE_PROFILE)
_FOUNDATION = "foundation-model/"


def profile_model(document: Any) -> str | None:
    """The foundation-model id every ``models[].modelArn`` of a GetInferenceProfile answer names,
    or None when there is none or they differ."""
    models = document.get("models") if isinstance(document, dict) else None
    ids = {
        arn.partition(_FOUNDATION)[2]
        for m in models or ()
        if isinstance(m, dict) and isinstance(arn := m.get("modelArn"), str)
    }
    return ids.pop() if len(ids) == 1 and "" not in ids else None


class ProfileResolver:
    """Application-inference-profile ARN -> the foundation model it runs (for pricing), via
    GetInferenceProfile, cached (positive results for ``ttl``, negative for a short time)."""

    def __init__(
        self,
        http: HttpClient,
        *,
        endpoint: str = "https://bedrock.{region}.amazonaws.com",
        credentials: Callable[[], Credentials | None],
        clock: Callable[[], datetime],
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self._http = http
        self._endpoint = endpoint
        self._credentials = credentials
        self._clock = clock
        self._ttl = ttl
        self._cache: ExpiringCache[str, str | None] = ExpiringCache()

    def known(self, arn: str) -> str | None:
        """The cached model for ``arn`` (no I/O; kept past ``ttl``), or None."""
        found = self._cache.entry(arn)
        return found[0] if found is not None else None

    async def resolve(self, arn: str) -> str | None:
        """The foundation-model id ``arn`` runs, or None (logged) when it cannot be resolved."""
        found = self._cache.entry(arn)
        if found is not None and self._clock() < found[1]:
            return found[0]
        return await self._cache.load(arn, partial(self._refresh, arn))

    async def _refresh(self, arn: str) -> str | None:
        previous = self._cache.entry(arn)
        ttl = self._ttl
        try:
            model: str | None = await self._fetch(arn)
        except SpendgateError as err:
            model, ttl = (previous[0] if previous is not None else None), NEGATIVE_TTL
            log.warning(
                "could not resolve inference profile %s (%s: %s); %s",
                display_value(arn, 300),
                getattr(err, "code", type(err).__name__),
                display_value(str(err), 300),
                f"keeping {model}" if model else "its calls are recorded as unpriced",
            )
        now = self._clock()
        self._cache.put(arn, model, now + ttl, now)
        return model

    async def _fetch(self, arn: str) -> str:
        """The model, else SpendgateError: AwsError (with the AWS error code) or UpstreamError."""
        ref = parse_model_id(arn)
        if ref.kind not in _PROFILE_KINDS or not ref.region or not is_valid_region(ref.region):
            raise AwsError("ValidationException", "not an inference-profile ARN")
        credentials = self._credentials()
        if credentials is None:
            raise AwsError("AccessDeniedException", "the gateway has no AWS credentials")
        base = self._endpoint.format(region=ref.region).rstrip("/")
        url = f"{base}/inference-profiles/{encode_model_id(arn)}"
        signer = Signer(credentials, ref.region, "bedrock")
        status, headers, body = await signed_call(self._http, signer, "GET", url, now=self._clock())
        if status != 200:
            raise parse_error_response(status, dict(headers), body)
        try:
            model = profile_model(json.loads(body))
        except ValueError:
            model = None
        if model is None:
            raise AwsError("InternalServerException", "no single foundation model in the answer")
        return model

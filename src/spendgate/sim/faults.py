"""Error injection: by rate (``--error-rate``) and on demand (``X-Sim-Error`` request header).

``X-Sim-Error: <kind>`` fails the request before the model runs; ``X-Sim-Error: stream:<kind>``
starts a stream and then sends an in-stream exception after ``X-Sim-Error-After`` events
(default 2). Random faults (a fraction ``error_rate`` of requests) are pre-response only and
mix throttling 50 %, internal error 20 %, service unavailable 15 %, model timeout 15 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from spendgate.errors import AwsError

KINDS: dict[str, tuple[str, str]] = {
    "throttling": ("ThrottlingException", "Too many requests, please wait before trying again."),
    "timeout": (
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    "internal": (
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    "unavailable": ("ServiceUnavailableException", "Bedrock is unable to process your request."),
    "model-error": ("ModelErrorException", "The model returned an error: simulated failure."),
    "stream-error": ("ModelStreamErrorException", "The model stream failed: simulated failure."),
    "not-ready": (
        "ModelNotReadyException",
        "Model is not ready to serve inference requests. Try again later.",
    ),
    "access-denied": (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "quota": ("ServiceQuotaExceededException", "Your request exceeds the service quota."),
    "validation": ("ValidationException", "Simulated validation failure."),
}
_RANDOM_KINDS = ("throttling", "internal", "unavailable", "timeout")
_RANDOM_WEIGHTS = (50, 20, 15, 15)


@dataclass(frozen=True, slots=True)
class Fault:
    error: AwsError
    in_stream: bool = False
    after_events: int = 2


def error_for(kind: str) -> AwsError:
    code, message = KINDS[kind]
    extra: dict[str, object] = {}
    if kind == "model-error":
        extra = {"originalStatusCode": 500, "resourceName": "simulated-model"}
    elif kind == "stream-error":
        extra = {"originalStatusCode": 500, "originalMessage": "simulated stream failure"}
    return AwsError(code, message, **extra)


def pick_fault(
    header: str | None, after: str | None, rng: random.Random, rate: float, streaming: bool
) -> Fault | None:
    if header:
        return _from_header(header.strip().lower(), after, streaming)
    if rate and rng.random() < rate:
        return Fault(error_for(rng.choices(_RANDOM_KINDS, _RANDOM_WEIGHTS)[0]))
    return None


def _from_header(value: str, after: str | None, streaming: bool) -> Fault:
    in_stream = value.startswith("stream:")
    kind = value.removeprefix("stream:")
    if kind not in KINDS:
        raise AwsError(
            "ValidationException", f"X-Sim-Error must be one of {', '.join(sorted(KINDS))}"
        )
    if in_stream and not streaming:
        raise AwsError("ValidationException", "X-Sim-Error stream:<kind> needs a streaming call")
    try:
        count = int(after) if after else 2
    except ValueError:
        raise AwsError("ValidationException", "X-Sim-Error-After must be an integer") from None
    return Fault(error_for(kind), in_stream, max(count, 0))

"""Application inference profile -> foundation model, against the real simulator's
GetInferenceProfile (SigV4 verified like AWS does it)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from spendgate.bedrock.sigv4 import Credentials
from spendgate.gateway.credentials import HttpClient
from spendgate.gateway.profiles import NEGATIVE_TTL, ProfileResolver, profile_model
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

from gateway_env import http_client
from helpers import Clock, free_port

APP = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simclaude001"
NOVA = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simnovalite1"
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
UNKNOWN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/nosuchprofil"
SIM_CREDENTIALS = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
LOGGER = "spendgate.gateway.profiles"


def resolver(
    http: HttpClient, url: str, clock: Clock, credentials: Credentials | None = SIM_CREDENTIALS
) -> ProfileResolver:
    return ProfileResolver(http, endpoint=url, credentials=lambda: credentials, clock=clock)


# --- the pure part -----------------------------------------------------------------------------


def test_profile_model() -> None:
    def doc(*arns: Any) -> dict[str, Any]:
        return {"models": [{"modelArn": arn} for arn in arns]}

    east = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"
    west = f"arn:aws:bedrock:us-west-2::foundation-model/{MODEL}"
    other = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"
    assert profile_model(doc(east, west)) == MODEL
    assert profile_model(doc(east, other)) is None
    assert profile_model(doc()) is None
    assert profile_model(doc("arn:aws:bedrock:us-east-1:123456789012:custom-model/x")) is None
    assert profile_model(doc(None)) is None
    assert profile_model({"models": "nope"}) is None
    assert profile_model([]) is None


# --- against the simulator ---------------------------------------------------------------------


def test_resolve_and_cache(sim_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            profiles = resolver(http, sim_url, clock)
            assert profiles.known(APP) is None
            assert await profiles.resolve(APP) == MODEL
            assert await profiles.resolve(APP) == MODEL
            assert profiles.known(APP) == MODEL
            assert len(http.sent) == 1
            method, url, headers, body = http.sent[0]
            assert (method, body) == ("GET", b"")
            assert url == (
                f"{sim_url}/inference-profiles/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012"
                "%3Aapplication-inference-profile%2Fsimclaude001"
            )
            assert "/us-east-1/bedrock/aws4_request" in dict(headers)["Authorization"]
            assert await profiles.resolve(NOVA) == "amazon.nova-lite-v1:0"
            clock.offset = timedelta(hours=1, minutes=1)  # past the ttl: asked again
            assert await profiles.resolve(APP) == MODEL
            assert len(http.sent) == 3

    asyncio.run(scenario())


def test_concurrent_resolves_share_one_request(sim_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            profiles = resolver(http, sim_url, clock)
            models = await asyncio.gather(*(profiles.resolve(APP) for _ in range(10)))
            assert models == [MODEL] * 10
            assert len(http.sent) == 1

    asyncio.run(scenario())


def test_unknown_profile(sim_url: str, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            profiles = resolver(http, sim_url, clock)
            assert await profiles.resolve(UNKNOWN) is None
            assert await profiles.resolve(UNKNOWN) is None  # negative result cached...
            assert len(http.sent) == 1
            clock.offset = NEGATIVE_TTL + timedelta(seconds=1)  # ...for a short time only
            assert await profiles.resolve(UNKNOWN) is None
            assert len(http.sent) == 2
            assert profiles.known(UNKNOWN) is None

    with caplog.at_level(logging.WARNING, LOGGER):
        asyncio.run(scenario())
    (first, *_) = caplog.records
    assert first.levelno == logging.WARNING
    assert first.getMessage() == (
        f"could not resolve inference profile {UNKNOWN} (ResourceNotFoundException: "
        f"Inference profile {UNKNOWN} not found.); its calls are recorded as unpriced"
    )


def test_wrong_credentials(sim_url: str, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    wrong = Credentials(DEFAULT_ACCESS_KEY_ID, "not-the-secret")

    async def scenario() -> None:
        async with http_client() as http:
            assert await resolver(http, sim_url, clock, wrong).resolve(APP) is None

    with caplog.at_level(logging.WARNING, LOGGER):
        asyncio.run(scenario())
    (record,) = caplog.records
    assert APP in record.getMessage()
    assert "(InvalidSignatureException: The request signature we calculated" in record.getMessage()
    assert "not-the-secret" not in caplog.text


def test_a_resolved_profile_survives_a_failed_refresh(
    sim_url: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    credentials: list[Credentials | None] = [SIM_CREDENTIALS]

    async def scenario() -> None:
        async with http_client() as http:
            profiles = ProfileResolver(
                http, endpoint=sim_url, credentials=lambda: credentials[0], clock=clock
            )
            assert await profiles.resolve(APP) == MODEL
            credentials[0] = Credentials("AKIAUNKNOWNKEY000000", "x")
            clock.offset = timedelta(hours=2)
            assert await profiles.resolve(APP) == MODEL
            assert profiles.known(APP) == MODEL
            assert len(http.sent) == 2
            assert await profiles.resolve(APP) == MODEL  # kept, retried after NEGATIVE_TTL
            assert len(http.sent) == 2
            clock.offset += NEGATIVE_TTL
            credentials[0] = SIM_CREDENTIALS
            assert await profiles.resolve(APP) == MODEL
            assert len(http.sent) == 3

    with caplog.at_level(logging.WARNING, LOGGER):
        asyncio.run(scenario())
    assert f"keeping {MODEL}" in caplog.text
    assert "UnrecognizedClientException" in caplog.text


@pytest.mark.parametrize(
    ("arn", "reason"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "(ValidationException: not an inference-"),
        (
            "arn:aws:bedrock:nowhere:123456789012:application-inference-profile/abcdefabcdef",
            "(ValidationException: not an inference-profile ARN)",
        ),
        ("../../etc", "(ValidationException: 1 validation error detected"),
    ],
)
def test_not_a_profile_arn_makes_no_request(
    clock: Clock, caplog: pytest.LogCaptureFixture, arn: str, reason: str
) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            assert await resolver(http, "http://127.0.0.1:9", clock).resolve(arn) is None
            assert http.sent == []

    with caplog.at_level(logging.WARNING, LOGGER):
        asyncio.run(scenario())
    assert reason in caplog.text


def test_no_credentials_or_no_answer(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            url = f"http://127.0.0.1:{free_port()}"
            assert await resolver(http, url, clock, credentials=None).resolve(APP) is None
            assert http.sent == []
            assert await resolver(http, url, clock).resolve(APP) is None
            assert len(http.sent) == 1

    with caplog.at_level(logging.WARNING, LOGGER):
        asyncio.run(scenario())
    assert "(AccessDeniedException: the gateway has no AWS credentials)" in caplog.text
    assert "(UpstreamError: upstream 127.0.0.1:" in caplog.text

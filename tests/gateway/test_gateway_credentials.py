"""Credentials for forwarded calls: request headers, STS AssumeRole (against moto in server mode and
a capturing server), and botocore's default chain."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from hypothesis import given
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spendgate.bedrock.sigv4 import Credentials, verify
from spendgate.errors import AwsError, ConfigError
from spendgate.gateway.credentials import (
    AwsIdentity,
    CredentialSource,
    HttpClient,
    RoleCache,
    assume_role_form,
    default_chain,
    from_headers,
    parse_assume_role,
    parse_sts_error,
    session_name,
    session_tags,
)

from gateway_env import http_client
from helpers import Clock, free_port, serve

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
BASE = Credentials("AKIAIOSFODNN7EXAMPLE", SECRET)
ROLE = "arn:aws:iam::111122223333:role/team-apollo"


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() leaves the listening socket open


@pytest.fixture
def sts_capture() -> Iterator[tuple[str, list[dict[str, Any]], list[tuple[int, bytes]]]]:
    """A fake STS endpoint: records every request, answers with the queued (status, body)s."""
    seen: list[dict[str, Any]] = []
    answers: list[tuple[int, bytes]] = []

    async def endpoint(request: Request) -> Response:
        seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": await request.body(),
            }
        )
        status, body = answers.pop(0) if answers else (200, assume_role_xml())
        return Response(body, status, media_type="text/xml")

    with serve(Starlette(routes=[Route("/", endpoint, methods=["POST"])])) as url:
        yield url, seen, answers


def assume_role_xml(expiration: str = "2099-01-01T00:00:00Z") -> bytes:
    return f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:alice</AssumedRoleId>
      <Arn>arn:aws:sts::111122223333:assumed-role/team-apollo/alice</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>
      <SecretAccessKey>{SECRET}</SecretAccessKey>
      <SessionToken>{TOKEN}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>""".encode()


ACCESS_DENIED = b"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::111122223333:user/gw is not authorized to perform: sts:TagSession
    </Message></Error>
  <RequestId>4d9b1f2c-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"""


def roles(http: HttpClient, url: str, clock: Clock, **kwargs: Any) -> RoleCache:
    kwargs.setdefault("base", lambda: BASE)
    return RoleCache(http, sts_endpoint=url, clock=clock, **kwargs)


# --- from_headers ------------------------------------------------------------------------------


def test_no_credential_headers_means_none() -> None:
    assert from_headers({}) is None
    assert from_headers({"Content-Type": "application/json", "X-Aws-Access-Key-Id": " "}) is None


def test_credentials_from_headers_in_any_case() -> None:
    headers = {
        "x-aws-access-key-id": "AKIAIOSFODNN7EXAMPLE",
        "X-AWS-SECRET-ACCESS-KEY": SECRET,
        "X-Aws-Session-Token": TOKEN,
    }
    assert from_headers(headers) == Credentials("AKIAIOSFODNN7EXAMPLE", SECRET, TOKEN)
    del headers["X-Aws-Session-Token"]
    assert from_headers(headers) == Credentials("AKIAIOSFODNN7EXAMPLE", SECRET, None)


@pytest.mark.parametrize(
    ("headers", "missing"),
    [
        ({"X-Aws-Access-Key-Id": "AKIAIOSFODNN7EXAMPLE"}, "X-Aws-Secret-Access-Key"),
        ({"x-aws-secret-access-key": SECRET}, "X-Aws-Access-Key-Id"),
        (
            {"X-Aws-Secret-Access-Key": SECRET, "X-Aws-Session-Token": TOKEN},
            "X-Aws-Access-Key-Id",
        ),
        ({"X-Aws-Session-Token": TOKEN}, "X-Aws-Access-Key-Id and X-Aws-Secret-Access-Key"),
    ],
)
def test_half_a_credential_is_a_validation_error(headers: dict[str, str], missing: str) -> None:
    with pytest.raises(AwsError) as caught:
        from_headers(headers)
    err = caught.value
    assert err.code == "ValidationException"
    assert err.status == 400
    assert f"without {missing}:" in str(err)
    for shown in (str(err), repr(err), err.message):
        assert SECRET not in shown
        assert TOKEN not in shown
        assert "AKIAIOSFODNN7EXAMPLE" not in shown


def test_secrets_stay_out_of_repr_and_str() -> None:
    identity = AwsIdentity(Credentials("ASIAEXAMPLE", SECRET, TOKEN), CredentialSource.ROLE, ROLE)
    for shown in (repr(identity), str(identity), f"{identity}"):
        assert SECRET not in shown
        assert TOKEN not in shown
        assert "ASIAEXAMPLE" in shown


# --- session names and tags --------------------------------------------------------------------

STS_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


@pytest.mark.parametrize(
    ("user", "key_name", "expected"),
    [
        ("alice@example.com", "ci-bot", "alice@example.com"),
        (None, "ci-bot", "ci-bot"),
        ("", "ci-bot", "ci-bot"),
        (None, None, "spendgate"),
        ("José Müller", None, "Jose-Muller"),
        ("a", None, "a-"),
        ("李雷", "team key", "team-key"),
        ("李雷", None, "spendgate"),
        ("x" * 80, None, "x" * 64),
        ("../etc/passwd", None, "..-etc-passwd"),
    ],
)
def test_session_name(user: str | None, key_name: str | None, expected: str) -> None:
    assert session_name(user, key_name) == expected


@given(st.none() | st.text(), st.none() | st.text())
def test_session_name_always_satisfies_sts(user: str | None, key_name: str | None) -> None:
    assert STS_SESSION_NAME.fullmatch(session_name(user, key_name))


def test_session_tags() -> None:
    tags = session_tags(
        {
            "project": "apollo",
            "department": "R&D",
            "user_id": "alice@example.com",
            "agent": "",
            "aws:team": "x",
            "environment": "  ",
            "cost_center": "cc/42 (eu)",
        }
    )
    assert tags == [
        ("aws-team", "x"),
        ("cost_center", "cc/42 -eu-"),
        ("department", "R-D"),
        ("project", "apollo"),
        ("user_id", "alice@example.com"),
    ]


def test_session_tags_limits() -> None:
    many = {f"k{n:02}": "v" for n in range(60)}
    assert [k for k, _ in session_tags(many)] == [f"k{n:02}" for n in range(50)]
    (key, value), *_ = session_tags({"K" * 200: "v" * 300, "k" * 200: "dropped"})
    assert (len(key), len(value)) == (128, 256)
    assert session_tags({"Team": "a", "team": "b"}) == [("Team", "a")]


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def sts_tag_chars(text: str) -> bool:
    """STS's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``: letters, separators, numbers and seven marks."""
    return all(unicodedata.category(c)[0] in ("L", "Z", "N") or c in "_.:/=+-@" for c in text)


@given(st.dictionaries(st.text(max_size=140), st.text(max_size=300), max_size=60))
def test_session_tags_always_satisfy_sts(attribution: dict[str, str]) -> None:
    tags = session_tags(attribution)
    assert len(tags) <= 50
    assert tags == sorted(tags)
    assert len({key.lower() for key, _ in tags}) == len(tags)
    for key, value in tags:
        assert 1 <= utf16_len(key) <= 128
        assert 1 <= utf16_len(value) <= 256
        assert sts_tag_chars(key)
        assert sts_tag_chars(value)
        assert not key.lower().startswith("aws:")
    assert session_tags(dict(reversed(attribution.items()))) == tags


# --- the STS wire format -----------------------------------------------------------------------


def test_assume_role_form_matches_botocore() -> None:
    tags = [("department", "R&D"), ("project", "Apollo 11/ü~*")]
    body = assume_role_form(ROLE, "alice", tags, duration_s=900, external_id="ext-1")
    model = botocore.session.get_session().get_service_model("sts")
    params = {
        "RoleArn": ROLE,
        "RoleSessionName": "alice",
        "DurationSeconds": 900,
        "Tags": [{"Key": k, "Value": v} for k, v in tags],
        "ExternalId": "ext-1",
    }
    expected = create_serializer("query").serialize_to_request(
        params, model.operation_model("AssumeRole")
    )["body"]
    assert body.decode() == percent_encode_sequence(expected)  # byte for byte


def test_parse_assume_role_and_errors() -> None:
    parsed = parse_assume_role(assume_role_xml("2026-03-01T12:00:00.123Z"))
    assert parsed is not None
    identity, expiration = parsed
    assert identity.credentials == Credentials("ASIAJEXAMPLEXEG2JICEA", SECRET, TOKEN)
    assert identity.principal == "arn:aws:sts::111122223333:assumed-role/team-apollo/alice"
    assert expiration == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert parse_assume_role(ACCESS_DENIED) is None
    assert parse_assume_role(b"not xml") is None
    assert parse_assume_role(assume_role_xml("tomorrow")) is None
    assert parse_sts_error(ACCESS_DENIED) == (
        "AccessDenied",
        "User: arn:aws:iam::111122223333:user/gw is not authorized to perform: sts:TagSession\n"
        "    ",
    )
    assert parse_sts_error(assume_role_xml()) is None
    assert parse_sts_error(b"<html>") is None


# --- RoleCache against moto (server mode) -------------------------------------------------------


def test_assume_role_with_moto(moto_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, moto_url, clock)
            tags = session_tags({"project": "apollo", "user_id": "alice"})
            identity = await cache.assume(ROLE, "alice", tags, external_id="ext-1")
            assert identity.source is CredentialSource.ROLE
            assert identity.principal == "arn:aws:sts::111122223333:assumed-role/team-apollo/alice"
            assert identity.credentials.access_key_id.startswith("ASIA")
            assert identity.credentials.session_token
            assert await cache.assume(ROLE, "alice", tags, external_id="ext-1") is identity
            assert len(http.sent) == 1 and cache.cached() == 1
            # another user, other tags or another external id is another session
            await cache.assume(ROLE, "bob", tags, external_id="ext-1")
            await cache.assume(ROLE, "alice", session_tags({"project": "x"}), external_id="ext-1")
            await cache.assume(ROLE, "alice", tags)
            assert len(http.sent) == 4 and cache.cached() == 4
            method, url, headers, body = http.sent[0]
            assert (method, url) == ("POST", moto_url + "/")
            assert "Tags.member.1.Key=project&Tags.member.1.Value=apollo" in body.decode()
            assert "/us-east-1/sts/aws4_request" in dict(headers)["Authorization"]

    asyncio.run(scenario())


def test_credentials_refresh_before_expiry(moto_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, moto_url, clock, duration_s=3600)
            first = await cache.assume(ROLE, "alice", [])
            clock.offset = timedelta(minutes=54)  # moto's expiry is 60 min; margin 5 min
            assert await cache.assume(ROLE, "alice", []) is first
            clock.offset = timedelta(minutes=56)
            second = await cache.assume(ROLE, "alice", [])
            assert second.credentials != first.credentials
            assert len(http.sent) == 2 and cache.cached() == 1

    asyncio.run(scenario())


def test_concurrent_callers_share_one_sts_call(moto_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, moto_url, clock)
            results = await asyncio.gather(*(cache.assume(ROLE, "alice", []) for _ in range(20)))
            assert len(http.sent) == 1
            assert all(r is results[0] for r in results)

    asyncio.run(scenario())


def test_a_cancelled_caller_does_not_cancel_the_others(moto_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, moto_url, clock)
            first = asyncio.ensure_future(cache.assume(ROLE, "alice", []))
            second = asyncio.ensure_future(cache.assume(ROLE, "alice", []))
            await asyncio.sleep(0)
            first.cancel()
            identity = await second
            assert first.cancelled() and identity.principal and len(http.sent) == 1

    asyncio.run(scenario())


def test_sts_error_from_moto_carries_code_and_message(moto_url: str, clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, moto_url, clock)
            with pytest.raises(AwsError) as caught:
                await cache.assume(ROLE, "x" * 65, [])  # moto checks the name's length
            assert caught.value.code == "AccessDeniedException"
            assert str(caught.value).startswith(f"could not assume role {ROLE}: ValidationError: ")
            assert "roleSessionName" in str(caught.value)
            assert cache.cached() == 0

    asyncio.run(scenario())


# --- RoleCache against a capturing server: the exact request ----------------------------------


def test_exact_request_sent_to_sts(sts_capture: Any, clock: Clock) -> None:
    url, seen, _ = sts_capture

    async def scenario() -> AwsIdentity:
        async with http_client() as http:
            cache = roles(http, url, clock, duration_s=900)
            tags = session_tags({"department": "R&D", "project": "apollo", "agent": ""})
            return await cache.assume(ROLE, "alice@example.com", tags, external_id="ext-123")

    identity = asyncio.run(scenario())
    assert identity.credentials == Credentials("ASIAJEXAMPLEXEG2JICEA", SECRET, TOKEN)
    assert identity.principal == "arn:aws:sts::111122223333:assumed-role/team-apollo/alice"
    (request,) = seen
    assert (request["method"], request["path"]) == ("POST", "/")
    assert request["body"] == (
        b"Action=AssumeRole&Version=2011-06-15"
        b"&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fteam-apollo"
        b"&RoleSessionName=alice%40example.com&DurationSeconds=900"
        b"&Tags.member.1.Key=department&Tags.member.1.Value=R-D"
        b"&Tags.member.2.Key=project&Tags.member.2.Value=apollo"
        b"&ExternalId=ext-123"
    )
    headers = request["headers"]
    assert headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    verified = verify(
        method="POST",
        path="/",
        query="",
        headers=headers,
        body=request["body"],
        lookup=lambda key: BASE if key == BASE.access_key_id else None,
        now=clock(),
        service="sts",
    )
    assert (verified.region, verified.service) == ("us-east-1", "sts")
    assert "content-type" in verified.signed_headers


def test_sts_access_denied_is_not_cached(sts_capture: Any, clock: Clock) -> None:
    url, seen, answers = sts_capture
    answers.append((403, ACCESS_DENIED))

    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, url, clock)
            with pytest.raises(AwsError) as caught:
                await cache.assume(ROLE, "alice", [])
            err = caught.value
            assert (err.code, err.status) == ("AccessDeniedException", 403)
            assert str(err).startswith(
                f"could not assume role {ROLE}: AccessDenied: User: arn:aws:iam::111122223333:"
                "user/gw is not authorized to perform: sts:TagSession"
            )
            assert cache.cached() == 0
            assert (await cache.assume(ROLE, "alice", [])).principal  # retried, now allowed
            assert len(seen) == 2

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((400, ACCESS_DENIED.replace(b"AccessDenied", b"Throttling")), "ThrottlingException"),
        ((503, b"<html>Service Unavailable</html>"), "ServiceUnavailableException"),
        ((200, b"<AssumeRoleResponse/>"), "ServiceUnavailableException"),
    ],
)
def test_other_sts_failures(sts_capture: Any, clock: Clock, answer: Any, code: str) -> None:
    url, _, answers = sts_capture
    answers.append(answer)

    async def scenario() -> None:
        async with http_client() as http:
            with pytest.raises(AwsError) as caught:
                await roles(http, url, clock).assume(ROLE, "alice", [])
            assert caught.value.code == code
            assert SECRET not in str(caught.value)

    asyncio.run(scenario())


def test_unreachable_sts(clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            with pytest.raises(AwsError) as caught:
                await roles(http, f"http://127.0.0.1:{free_port()}", clock).assume(ROLE, "a1", [])
            assert caught.value.code == "ServiceUnavailableException"
            assert str(caught.value).startswith(f"could not assume role {ROLE}: ")

    asyncio.run(scenario())


def test_no_base_credentials(clock: Clock) -> None:
    async def scenario() -> None:
        async with http_client() as http:
            cache = roles(http, "http://127.0.0.1:9", clock, base=lambda: None)
            with pytest.raises(AwsError) as caught:
                await cache.assume(ROLE, "alice", [])
            assert caught.value.code == "AccessDeniedException"
            assert "no AWS credentials configured to assume roles with" in str(caught.value)
            assert http.sent == []

    asyncio.run(scenario())


# --- default_chain -----------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AWS environment with empty config files and no network sources; returns the
    credentials file."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CREDENTIAL_PROCESS",
    ):
        monkeypatch.delenv(name, raising=False)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("")
    credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return credentials


def test_default_chain_reads_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    current = default_chain()
    assert current() == Credentials("AKIAENVEXAMPLE", SECRET, TOKEN)
    assert SECRET not in repr(current()) and TOKEN not in repr(current())


def test_default_chain_reads_a_profile(aws_env: Path) -> None:
    aws_env.write_text(
        f"[dev]\naws_access_key_id = AKIADEVEXAMPLE\naws_secret_access_key = {SECRET}\n"
    )
    assert default_chain("dev")() == Credentials("AKIADEVEXAMPLE", SECRET)
    with pytest.raises(ConfigError, match="AWS profile 'prod' is not in the AWS config files"):
        default_chain("prod")


def test_default_chain_without_credentials(aws_env: Path) -> None:
    assert default_chain()() is None

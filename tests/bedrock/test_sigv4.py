"""SigV4 signing (byte-identical to botocore) and verification (AWS's error types and messages)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spendgate.bedrock.modelids import encode_model_id
from spendgate.bedrock.sigv4 import (
    SIGNED_HEADERS_BLACKLIST,
    Credentials,
    Signer,
    SigningKeys,
    Verified,
    canonical_uri,
    sign,
    signing_key,
    verify,
)
from spendgate.errors import AwsError

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
NOW = datetime(2026, 11, 22, 8, 16, 13, tzinfo=UTC)
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
PROFILE_PATH = "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"
ARN_PATH = (
    "/model/"
    + encode_model_id(
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123def456"
    )
    + "/converse"
)
TEMPORARY = Credentials("ASIAEXAMPLE", "temporary/secret+key", "SESSIONTOKENEXAMPLE")
LONG_TERM = Credentials("AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
BASE_HEADERS = {"Content-Type": "application/json"}
MISMATCH = "The request signature we calculated does not match the signature you provided."


def botocore_sign(
    *,
    method: str = "POST",
    path: str = PROFILE_PATH,
    query: str = "",
    headers: Mapping[str, str] = BASE_HEADERS,
    body: bytes = BODY,
    credentials: Credentials = TEMPORARY,
    region: str = "us-east-1",
    service: str = "bedrock",
    now: datetime = NOW,
) -> dict[str, str]:
    """The request headers after botocore's own SigV4Auth signed it, plus the Host it would send."""
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    boto_credentials = botocore.credentials.Credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    frozen = now.astimezone(UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        botocore.auth.SigV4Auth(boto_credentials, service, region).add_auth(request)
    return {**dict(request.headers.items()), "Host": HOST}


def lookup_for(*known: Credentials):  # type: ignore[no-untyped-def]
    table = {c.access_key_id: c for c in known}
    return table.get


def check(
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    path: str = PROFILE_PATH,
    query: str = "",
    body: bytes = BODY,
    known: tuple[Credentials, ...] = (TEMPORARY, LONG_TERM),
    now: datetime = NOW,
) -> Verified:
    return verify(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        lookup=lookup_for(*known),
        now=now,
    )


def rejected(headers: Mapping[str, str], **kwargs: object) -> AwsError:
    with pytest.raises(AwsError) as info:
        check(headers, **kwargs)  # type: ignore[arg-type]
    return info.value


def with_auth(headers: Mapping[str, str], old: str, new: str) -> dict[str, str]:
    return {**headers, "Authorization": headers["Authorization"].replace(old, new)}


# --- signing ------------------------------------------------------------------------------------


def test_blacklist_is_botocores() -> None:
    assert frozenset(botocore.auth.SIGNED_HEADERS_BLACKLIST) == SIGNED_HEADERS_BLACKLIST


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PROFILE_PATH, "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%253A0/converse-stream"),
        (
            ARN_PATH,
            "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253A"
            "application-inference-profile%252Fabc123def456/converse",
        ),
        ("", "/"),
        ("/", "/"),
        ("/a/./b/../c//d/", "/a/c/d/"),
        ("/model/a b/converse", "/model/a%20b/converse"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected


PATH_PARTS = st.sampled_from(
    ["/", ".", "..", "%3A", "%2F", "a", "Z", "~", ":", " ", "é", "-_", "%"]
)


@given(st.lists(PATH_PARTS, max_size=12).map("".join))
def test_canonical_uri_equals_botocore(path: str) -> None:
    auth = botocore.auth.SigV4Auth(None, "bedrock", "us-east-1")
    assert canonical_uri(path) == auth._normalize_url_path(path)


SIGN_CASES = {
    "profile id": {"path": PROFILE_PATH},
    "app profile ARN": {"path": ARN_PATH},
    "long-term credentials": {"path": ARN_PATH, "credentials": LONG_TERM},
    "request metadata": {
        "headers": {
            **BASE_HEADERS,
            "X-Amzn-Bedrock-Request-Metadata": '{"team":  "search", "user": "a b"}',
            "X-Amzn-Bedrock-Trace": "ENABLED",
            "Accept": "application/vnd.amazon.eventstream",
        }
    },
    "blacklisted headers": {
        "headers": {**BASE_HEADERS, "User-Agent": "Boto3/1.43", "X-Amzn-Trace-Id": "Root=1"}
    },
    "query and GET": {"method": "GET", "path": "/", "query": "b=2&a=1&a=0", "body": b""},
    "eu region": {"region": "eu-west-1"},
    "empty body": {"body": b""},
}


@pytest.mark.parametrize("case", SIGN_CASES.values(), ids=SIGN_CASES.keys())
def test_sign_is_byte_identical_to_botocore(case: dict[str, object]) -> None:
    expected = botocore_sign(**case)  # type: ignore[arg-type]
    args: dict[str, object] = {
        "method": "POST",
        "path": PROFILE_PATH,
        "query": "",
        "headers": BASE_HEADERS,
        "body": BODY,
        "credentials": TEMPORARY,
        "region": "us-east-1",
        **case,
    }
    added = sign(host=HOST, now=NOW, **args)  # type: ignore[arg-type]
    assert added["Authorization"] == expected["Authorization"]
    assert added["X-Amz-Date"] == expected["X-Amz-Date"] == "20261122T081613Z"
    assert added.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")
    assert set(added) == {"Authorization", "X-Amz-Date"} | (
        {"X-Amz-Security-Token"} if args["credentials"] is TEMPORARY else set()
    )


HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@settings(deadline=None)
@given(
    body=st.binary(max_size=200),
    metadata=HEADER_VALUE,
    model=st.sampled_from([PROFILE_PATH, ARN_PATH, "/model/amazon.nova-lite-v1%3A0/invoke"]),
    now=st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
)
def test_sign_matches_botocore_for_any_body_header_and_time(
    body: bytes, metadata: str, model: str, now: datetime
) -> None:
    headers = {**BASE_HEADERS, "X-Amzn-Bedrock-Request-Metadata": metadata}
    expected = botocore_sign(path=model, headers=headers, body=body, now=now)
    signer = Signer(TEMPORARY, "us-east-1")
    added = signer.sign(method="POST", host=HOST, path=model, headers=headers, body=body, now=now)
    assert added["Authorization"] == expected["Authorization"]


def test_sign_replaces_auth_headers_the_request_already_has() -> None:
    stale = {
        **BASE_HEADERS,
        "authorization": "AWS4-HMAC-SHA256 Credential=old",
        "X-AMZ-DATE": "20200101T000000Z",
        "X-Amz-Security-Token": "client-token",
        "Host": "elsewhere.example",
    }
    args = {"method": "POST", "host": HOST, "path": PROFILE_PATH, "body": BODY, "now": NOW}
    signer = Signer(TEMPORARY, "us-east-1")
    assert signer.sign(headers=stale, **args) == signer.sign(headers=BASE_HEADERS, **args)  # type: ignore[arg-type]


def test_sign_requires_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(
            method="POST",
            host=HOST,
            path="/",
            headers={},
            body=b"",
            credentials=LONG_TERM,
            region="us-east-1",
            now=NOW.replace(tzinfo=None),
        )


def test_signing_key_matches_the_aws_documentation_example() -> None:
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_keys_cache_is_bounded_and_correct() -> None:
    keys = SigningKeys(maxsize=2)
    for day in ("20261120", "20261121", "20261122", "20261120"):
        assert keys.get("s", day, "us-east-1", "bedrock") == signing_key(
            "s", day, "us-east-1", "bedrock"
        )
        assert len(keys) <= 2


def test_credentials_repr_hides_secrets() -> None:
    shown = repr(TEMPORARY)
    assert "ASIAEXAMPLE" in shown
    assert "temporary/secret" not in shown
    assert "SESSIONTOKEN" not in shown


# --- verification: accepted ---------------------------------------------------------------------


@pytest.mark.parametrize("case", SIGN_CASES.values(), ids=SIGN_CASES.keys())
def test_verify_accepts_what_botocore_signs(case: dict[str, object]) -> None:
    headers = botocore_sign(**case)  # type: ignore[arg-type]
    request = {k: v for k, v in case.items() if k in ("method", "path", "query", "body")}
    verified = check(headers, **request)  # type: ignore[arg-type]
    credentials = case.get("credentials", TEMPORARY)
    assert verified.access_key_id == credentials.access_key_id  # type: ignore[attr-defined]
    assert verified.region == case.get("region", "us-east-1")
    assert verified.service == "bedrock"
    assert verified.amz_date == NOW
    assert "host" in verified.signed_headers


def test_verify_accepts_our_own_signature_with_any_header_case() -> None:
    headers = {**BASE_HEADERS, "X-Amzn-Bedrock-Request-Metadata": '{"a": "b"}', "Host": HOST}
    signed = sign(
        method="POST",
        host=HOST,
        path=ARN_PATH,
        headers=headers,
        body=BODY,
        credentials=TEMPORARY,
        region="us-west-2",
        now=NOW,
    )
    received = {name.upper(): value for name, value in {**headers, **signed}.items()}
    assert check(received, path=ARN_PATH).region == "us-west-2"


def test_verify_accepts_a_compact_authorization_header_and_clock_skew_at_the_limit() -> None:
    headers = botocore_sign()
    compact = headers["Authorization"].replace(", ", ",")
    check({**headers, "Authorization": compact}, now=NOW + timedelta(minutes=5))
    check(headers, now=NOW - timedelta(minutes=5))


# --- verification: rejected ---------------------------------------------------------------------


def test_missing_authorization() -> None:
    headers = botocore_sign()
    del headers["Authorization"]
    err = rejected(headers)
    assert (err.code, err.message, err.status) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        403,
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 ", "Unsupported AWS 'algorithm'"),
        ("Credential=", "Cred=", "Authorization header requires 'Credential' parameter."),
        ("SignedHeaders=", "Signed=", "Authorization header requires 'SignedHeaders' parameter."),
        ("Signature=", "Sig=", "Authorization header requires 'Signature' parameter."),
        ("Credential=", "Credential ", "not a valid key=value pair (missing equal-sign)"),
        ("/20261122/", "/", "Credential must have exactly 5 slash-delimited elements"),
        ("/aws4_request", "/aws5_request", "scoped with a valid terminator: 'aws4_request'"),
        ("/us-east-1/", "/evil.example.com/", "scoped to a valid region, not 'evil.example.com'"),
    ],
)
def test_malformed_authorization(old: str, new: str, message: str) -> None:
    err = rejected(with_auth(botocore_sign(), old, new))
    assert err.code == "IncompleteSignatureException"
    assert message in err.message
    assert err.status == 403


def test_bearer_authorization_is_incomplete_for_sigv4() -> None:
    err = rejected({**botocore_sign(), "Authorization": "Bearer bedrock-api-key-abc"})
    assert err.code == "IncompleteSignatureException"


def test_error_messages_do_not_echo_the_signature() -> None:
    headers = with_auth(botocore_sign(), "Credential=", "Cred=")
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    assert signature not in rejected(headers).message


def test_missing_date() -> None:
    headers = botocore_sign()
    del headers["X-Amz-Date"]
    err = rejected(headers)
    assert err.code == "IncompleteSignatureException"
    assert err.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261122/us-east-1/bedrock/"
    )


def test_malformed_date() -> None:
    err = rejected({**botocore_sign(), "X-Amz-Date": "2026-11-22T08:16:13Z"})
    assert err.code == "IncompleteSignatureException"
    assert "Date must be in ISO-8601 'basic format'" in err.message
    assert rejected(
        {**botocore_sign(), "X-Amz-Date": "20261399T081613Z"}
    ).message == err.message.replace("2026-11-22T08:16:13Z", "20261399T081613Z")


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        ("x-amz-date", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."),
        (
            "x-amz-security-token",
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        ("content-type", "'Content-Type' must be a 'SignedHeader' in the AWS Authorization."),
    ],
)
def test_required_headers_must_be_signed(header: str, shown: str) -> None:
    headers = botocore_sign()
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    unsigned = ";".join(name for name in signed.split(";") if name != header)
    err = rejected(with_auth(headers, f"SignedHeaders={signed}", f"SignedHeaders={unsigned}"))
    assert (err.code, err.message) == ("InvalidSignatureException", shown)


def test_signed_header_missing_from_the_request() -> None:
    headers = botocore_sign(headers={**BASE_HEADERS, "X-Amzn-Bedrock-Trace": "ENABLED"})
    del headers["X-Amzn-Bedrock-Trace"]
    err = rejected(headers)
    assert (err.code, err.message) == (
        "IncompleteSignatureException",
        "'x-amzn-bedrock-trace' is named as a SignedHeader, "
        "but it does not exist in the HTTP request.",
    )


def test_wrong_service_in_scope() -> None:
    err = rejected(botocore_sign(service="s3"))
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'bedrock'. ",
    )


def test_scope_date_must_match_x_amz_date() -> None:
    late = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    headers = {**botocore_sign(now=late), "X-Amz-Date": "20261123T000001Z"}
    err = rejected(headers, now=late)
    assert err.code == "InvalidSignatureException"
    assert err.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20261122' != '20261123', from '20261123T000001Z'."
    )


def test_unknown_access_key() -> None:
    err = rejected(botocore_sign(), known=(LONG_TERM,))
    assert (err.code, err.message) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


@pytest.mark.parametrize(
    ("signed_with", "known"),
    [
        (TEMPORARY, Credentials("ASIAEXAMPLE", "temporary/secret+key", "ANOTHERTOKEN")),
        (TEMPORARY, Credentials("ASIAEXAMPLE", "temporary/secret+key")),
        (Credentials("ASIAEXAMPLE", "temporary/secret+key"), TEMPORARY),
    ],
)
def test_session_token_must_match(signed_with: Credentials, known: Credentials) -> None:
    err = rejected(botocore_sign(credentials=signed_with), known=(known,))
    assert err.code == "UnrecognizedClientException"


def test_signature_expired() -> None:
    headers = botocore_sign(now=datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC))
    err = rejected(headers, now=datetime(2026, 11, 22, 8, 15, 0, tzinfo=UTC))
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Signature expired: 20261122T080000Z is now earlier than 20261122T081000Z "
        "(20261122T081500Z - 5 min.)",
    )


def test_signature_not_yet_current() -> None:
    headers = botocore_sign(now=datetime(2026, 11, 22, 8, 21, 0, tzinfo=UTC))
    err = rejected(headers, now=datetime(2026, 11, 22, 8, 15, 0, tzinfo=UTC))
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Signature not yet current: 20261122T082100Z is still later than 20261122T082000Z "
        "(20261122T081500Z + 5 min.)",
    )


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)]
)
def test_clock_skew_just_past_the_limit_is_rejected(offset: timedelta) -> None:
    err = rejected(botocore_sign(), now=NOW + offset)
    assert err.code == "InvalidSignatureException"
    assert err.message.startswith("Signature expired" if offset > timedelta(0) else "Signature not")


TAMPERED = {
    "wrong secret": {"known": (Credentials("ASIAEXAMPLE", "other", "SESSIONTOKENEXAMPLE"),)},
    "body": {"body": BODY + b" "},
    "path": {"path": PROFILE_PATH.replace("v2", "v3")},
    "method": {"method": "PUT"},
    "query": {"query": "a=1"},
}


@pytest.mark.parametrize("change", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_requests_fail_the_signature_check(change: dict[str, object]) -> None:
    err = rejected(botocore_sign(), **change)
    assert err.code == "InvalidSignatureException"
    assert err.message.startswith(MISMATCH)


@pytest.mark.parametrize(
    ("header", "value"),
    [("Content-Type", "text/plain"), ("X-Amzn-Bedrock-Request-Metadata", '{"team": "ads"}')],
)
def test_tampered_signed_header_fails(header: str, value: str) -> None:
    metadata = {**BASE_HEADERS, "X-Amzn-Bedrock-Request-Metadata": '{"team": "search"}'}
    err = rejected({**botocore_sign(headers=metadata), header: value})
    assert err.message.startswith(MISMATCH)


def test_whitespace_the_canonical_form_trims_does_not_matter() -> None:
    metadata = {**BASE_HEADERS, "X-Amzn-Bedrock-Request-Metadata": '{"team": "search"}'}
    check(
        {
            **botocore_sign(headers=metadata),
            "X-Amzn-Bedrock-Request-Metadata": ' {"team":   "search"} ',
        }
    )


@pytest.mark.parametrize("signature", ["0" * 64, "zz", "é" * 64, ""])
def test_malformed_or_wrong_signature_is_a_mismatch(signature: str) -> None:
    headers = botocore_sign()
    original = headers["Authorization"].rsplit("Signature=", 1)[1]
    err = rejected(with_auth(headers, f"Signature={original}", f"Signature={signature or 'x'}"))
    assert err.message.startswith(MISMATCH)


def test_body_is_always_hashed_even_with_an_x_amz_content_sha256_header() -> None:
    headers = botocore_sign(headers={**BASE_HEADERS, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert rejected(headers).message.startswith(MISMATCH)


def test_verify_requires_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(botocore_sign(), now=NOW.replace(tzinfo=None))


@settings(deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_any_body_change_invalidates_the_signature(body: bytes, other: bytes) -> None:
    assume(body != other)
    headers = botocore_sign(body=body)
    check(headers, body=body)
    assert rejected(headers, body=other).message.startswith(MISMATCH)


@settings(deadline=None)
@given(st.lists(PATH_PARTS, max_size=8).map("".join), st.lists(PATH_PARTS, max_size=8).map("".join))
def test_any_path_change_invalidates_the_signature(suffix: str, other: str) -> None:
    path, changed = f"/model/{suffix}", f"/model/{other}"
    assume(canonical_uri(path) != canonical_uri(changed))
    headers = botocore_sign(path=path)
    check(headers, path=path)
    assert rejected(headers, path=changed).message.startswith(MISMATCH)

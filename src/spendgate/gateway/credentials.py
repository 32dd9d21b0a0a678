"""The AWS credentials a forwarded call is signed with; first match wins.

    1. request   ``X-Aws-Access-Key-Id`` / ``-Secret-Access-Key`` / ``-Session-Token`` headers
                 (``from_headers``), for that call only, never logged or stored
    2. role      the key's or team's role via ``sts:AssumeRole`` (``RoleCache``), session name =
                 the user, session tags = the attribution, so CUR 2.0's ``line_item_iam_principal``
                 and ``iamPrincipal/*`` tags name our owner (trust policy: AssumeRole + TagSession)
    3. default   the server's own credentials: botocore's default chain (``default_chain``)

Secrets live in memory only; no repr, log line or message here shows a secret or header value.
Sanitising and STS XML parsing are pure; I/O goes through an injected ``HttpClient``.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Generic, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import botocore.exceptions  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]

from spendgate.bedrock.modelids import display_value
from spendgate.bedrock.sigv4 import Credentials, Signer
from spendgate.errors import AwsError, ConfigError, SpendgateError

ACCESS_KEY_HEADER = "X-Aws-Access-Key-Id"
SECRET_KEY_HEADER = "X-Aws-Secret-Access-Key"
SESSION_TOKEN_HEADER = "X-Aws-Session-Token"
_HEADER_NAMES = {h.lower(): h for h in (ACCESS_KEY_HEADER, SECRET_KEY_HEADER, SESSION_TOKEN_HEADER)}

# STS limits (AssumeRole API reference): RoleSessionName [\w+=,.@-]{2,64}; session tags.
SESSION_NAME_FALLBACK = "spendgate"
_SESSION_NAME_BAD = re.compile(r"[^A-Za-z0-9_+=,.@-]")
MAX_SESSION_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
MAX_CACHE_ENTRIES = 10_000
STS_VERSION = "2011-06-15"
_FORM = (("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),)

K = TypeVar("K")
V = TypeVar("V")


class HttpResponse(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    async def read(self) -> bytes: ...
    async def aclose(self) -> None: ...


class HttpClient(Protocol):
    """The slice of ``spendgate.gateway.upstream.Upstream`` used here (path sent as given)."""

    async def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> HttpResponse: ...


class CredentialSource(StrEnum):
    REQUEST = "request"
    ROLE = "role"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class AwsIdentity:
    credentials: Credentials  # secret and token hidden from repr
    source: CredentialSource
    principal: str | None = None  # assumed-role ARN (AssumedRoleUser.Arn) when known


# --- pure: request headers, session names and tags, STS XML ------------------------------------


def from_headers(headers: Mapping[str, str]) -> Credentials | None:
    """Per-request credentials from the ``X-Aws-*`` headers (any case); None when none is sent.

    Raises AwsError(ValidationException) naming the missing header, never echoing a value.
    """
    found: dict[str, str] = {}
    for name, value in headers.items():
        if (known := _HEADER_NAMES.get(name.lower())) and value.strip():
            found[known] = value.strip()
    if not found:
        return None
    missing = [h for h in (ACCESS_KEY_HEADER, SECRET_KEY_HEADER) if h not in found]
    if missing:
        given = " and ".join(h for h in _HEADER_NAMES.values() if h in found)
        raise AwsError(
            "ValidationException",
            f"{given} {'was' if len(found) == 1 else 'were'} sent without "
            f"{' and '.join(missing)}: send {ACCESS_KEY_HEADER} and {SECRET_KEY_HEADER} together "
            f"(plus {SESSION_TOKEN_HEADER} for temporary credentials), or none of them.",
        )
    return Credentials(
        found[ACCESS_KEY_HEADER], found[SECRET_KEY_HEADER], found.get(SESSION_TOKEN_HEADER)
    )


def _ascii_fold(value: str) -> str:  # "José" -> "Jose"
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def session_name(user: str | None, key_name: str | None) -> str:
    """A valid ``RoleSessionName`` from the user, else the key name, else ``spendgate``."""
    for candidate in (user, key_name):
        name = _SESSION_NAME_BAD.sub("-", _ascii_fold(candidate or "").strip())[:64]
        if any(c.isalnum() for c in name):
            return name.ljust(2, "-")
    return SESSION_NAME_FALLBACK


def _tag_text(value: str, limit: int) -> str:
    """Characters outside STS's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`` become ``-``; cut to ``limit``
    UTF-16 code units (STS counts Java string length)."""
    out: list[str] = []
    units = 0
    for c in value.strip():
        ok = unicodedata.category(c)[0] in "LZN" or c in _TAG_PUNCTUATION
        ch = c if ok else "-"
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            break
        out.append(ch)
    return "".join(out).strip()


def session_tags(attribution: Mapping[str, str]) -> list[tuple[str, str]]:
    """Valid STS session tags, sorted by key; empty values and case-insensitive duplicates dropped,
    at most 50. Keys may not start with the reserved ``aws:`` prefix, so its colon becomes ``-``."""
    tags: dict[str, tuple[str, str]] = {}
    for raw_key in sorted(attribution):
        key = _tag_text(raw_key, MAX_TAG_KEY)
        if key.lower().startswith("aws:"):
            key = f"{key[:3]}-{key[4:]}"
        value = _tag_text(attribution[raw_key], MAX_TAG_VALUE)
        if key and value and key.lower() not in tags:
            tags[key.lower()] = (key, value)
    return sorted(tags.values())[:MAX_SESSION_TAGS]


def assume_role_form(
    role_arn: str,
    session: str,
    tags: Sequence[tuple[str, str]],
    *,
    duration_s: int,
    external_id: str | None = None,
) -> bytes:
    """The form-encoded AssumeRole request body (STS query protocol)."""
    params = [("Action", "AssumeRole"), ("Version", STS_VERSION), ("RoleArn", role_arn)]
    params += [("RoleSessionName", session), ("DurationSeconds", str(duration_s))]
    for n, (key, value) in enumerate(tags, start=1):
        params += [(f"Tags.member.{n}.Key", key), (f"Tags.member.{n}.Value", value)]
    if external_id is not None:
        params.append(("ExternalId", external_id))
    return urlencode(params, quote_via=quote, safe="").encode()  # as botocore percent-encodes


def _xml(body: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def parse_sts_error(body: bytes) -> tuple[str, str] | None:
    """``(Code, Message)`` of an STS ``<ErrorResponse>``, or None if it is not one."""
    root = _xml(body)
    error = None if root is None else root.find(".//{*}Error")
    if error is None:
        return None
    code = error.findtext("{*}Code") or "UnknownError"
    return code, error.findtext("{*}Message") or ""


def parse_assume_role(body: bytes) -> tuple[AwsIdentity, datetime] | None:
    """The identity (with the assumed-role ARN) and expiry time of an AssumeRole response."""
    root = _xml(body)
    result = None if root is None else root.find(".//{*}AssumeRoleResult")
    if result is None:
        return None
    key_id, secret, token, expires = (
        result.findtext(f"{{*}}Credentials/{{*}}{name}") or ""
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    )
    try:
        expiration = datetime.fromisoformat(expires)
    except ValueError:
        return None
    if not key_id or not secret or expiration.tzinfo is None:
        return None
    credentials = Credentials(key_id, secret, token or None)
    arn = result.findtext("{*}AssumedRoleUser/{*}Arn")
    return AwsIdentity(credentials, CredentialSource.ROLE, arn), expiration


# --- I/O: signed calls and a shared cache --------------------------------------------------


async def signed_call(
    http: HttpClient,
    signer: Signer,
    method: str,
    url: str,
    *,
    now: datetime,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send one SigV4-signed request (path and query as given): ``(status, headers, body)``."""
    parts = urlsplit(url)
    all_headers = [("Host", parts.netloc), *headers]
    added = signer.sign(
        method=method,
        host=parts.netloc,
        path=parts.path or "/",
        query=parts.query,
        headers=dict(all_headers),
        body=body,
        now=now,
    )
    response = await http.request(method, url, [*all_headers, *added.items()], body)
    try:
        return response.status, response.headers, await response.read()
    finally:
        await response.aclose()


class ExpiringCache(Generic[K, V]):
    """A bounded map of values with expiry times; concurrent loads of one key share one call
    (a load that raises is not cached, and every waiter sees its exception)."""

    def __init__(self) -> None:
        self._entries: dict[K, tuple[V, datetime]] = {}
        self._loading: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, key: K) -> tuple[V, datetime] | None:  # expired ones too
        return self._entries.get(key)

    def put(self, key: K, value: V, expires: datetime, now: datetime) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= MAX_CACHE_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if now < e[1]}
            while len(self._entries) >= MAX_CACHE_ENTRIES:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (value, expires)

    async def load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        """One ``loader`` run shared by concurrent callers; a cancelled caller leaves it going."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(loader())
            self._loading[key] = task
            task.add_done_callback(partial(self._loaded, key))
        return await asyncio.shield(task)

    def _loaded(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" noise when every waiter left


# --- role assumption ------------------------------------------------------------------------

_RoleKey = tuple[str, str, tuple[tuple[str, str], ...], str | None]


class RoleCache:
    """AssumeRole with caching: key = (role_arn, session_name, tags, external_id); reuse until
    ``margin`` before Expiration; concurrent callers for the same key share ONE in-flight STS
    call; failures are not cached."""

    def __init__(
        self,
        http: HttpClient,
        *,
        base: Callable[[], Credentials | None],
        sts_endpoint: str = "https://sts.{region}.amazonaws.com",
        region: str = "us-east-1",
        clock: Callable[[], datetime],
        margin: timedelta = timedelta(minutes=5),
        duration_s: int = 3600,
    ) -> None:
        self._http = http
        self._base = base
        self._url = sts_endpoint.format(region=region).rstrip("/") + "/"
        self._region = region
        self._clock = clock
        self._margin = margin
        self._duration_s = duration_s
        self._cache: ExpiringCache[_RoleKey, AwsIdentity] = ExpiringCache()

    def cached(self) -> int:
        return len(self._cache)

    async def assume(
        self,
        role_arn: str,
        session: str,
        tags: Sequence[tuple[str, str]],
        *,
        external_id: str | None = None,
    ) -> AwsIdentity:
        key: _RoleKey = (role_arn, session, tuple(tags), external_id)
        found = self._cache.entry(key)
        if found is not None and self._clock() < found[1]:
            return found[0]
        return await self._cache.load(key, partial(self._assume, key))

    async def _assume(self, key: _RoleKey) -> AwsIdentity:
        role_arn, session, tags, external_id = key
        base = self._base()
        if base is None:
            detail = "the gateway has no AWS credentials configured to assume roles with"
            raise _sts_failure(role_arn, "AccessDeniedException", detail)
        body = assume_role_form(
            role_arn, session, tags, duration_s=self._duration_s, external_id=external_id
        )
        signer = Signer(base, self._region, "sts")
        try:
            status, _, answer = await signed_call(
                self._http, signer, "POST", self._url, now=self._clock(), headers=_FORM, body=body
            )
        except SpendgateError as err:
            raise _sts_failure(role_arn, "ServiceUnavailableException", str(err)) from None
        assumed = parse_assume_role(answer) if status == 200 else None
        if assumed is None:
            raise _sts_error(role_arn, status, answer)
        self._cache.put(key, assumed[0], assumed[1] - self._margin, self._clock())
        return assumed[0]


def _sts_failure(role_arn: str, code: str, detail: str) -> AwsError:
    return AwsError(code, f"could not assume role {display_value(role_arn, 200)}: {detail}")


def _sts_error(role_arn: str, status: int, body: bytes) -> AwsError:
    """AccessDeniedException carrying STS's own code and message (ThrottlingException when STS
    throttled us, ServiceUnavailableException when it did not answer with STS XML)."""
    error = parse_sts_error(body)
    if error is None:
        detail = f"STS answered HTTP {status} with no readable result"
        return _sts_failure(role_arn, "ServiceUnavailableException", detail)
    code = "ThrottlingException" if error[0].startswith("Throttl") else "AccessDeniedException"
    detail = f"{display_value(error[0])}: {display_value(error[1], 300)}"
    return _sts_failure(role_arn, code, detail)


# --- the server's default chain -------------------------------------------------------------


def default_chain(profile: str | None = None) -> Callable[[], Credentials | None]:
    """botocore's default credential chain (environment, shared config/credentials files, SSO,
    web identity, container and instance metadata), resolved once, now, at startup.

    The returned callable is cheap: it hands out the current frozen credentials and only does I/O
    inside botocore's refresh window (about once an hour for temporary credentials). It returns
    None when the chain found nothing. Raises ConfigError for a missing profile or a broken config.
    """
    try:
        found = botocore.session.Session(profile=profile).get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(f"AWS profile {profile!r} is not in the AWS config files") from None
    except botocore.exceptions.BotoCoreError as err:
        raise ConfigError(f"could not load AWS credentials: {err}") from None
    if found is None:
        return lambda: None

    def current() -> Credentials | None:
        try:
            frozen = found.get_frozen_credentials()  # refreshes inside botocore's window
        except botocore.exceptions.BotoCoreError as err:
            raise AwsError(
                "InternalServerException",
                f"the gateway's own AWS credentials could not be refreshed: {err}",
            ) from None
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current

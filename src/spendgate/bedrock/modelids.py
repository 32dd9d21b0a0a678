"""Bedrock model identifiers: parse, validate, percent-encode and auto-prefix them.

The accepted forms follow Bedrock's own ``ConversationalModelId`` / ``InvokeModelIdentifier``
patterns (botocore ``bedrock-runtime/2023-09-30/service-2.json``), with the foundation-model part
taken from the control plane's ``FoundationModelArn`` / ``CustomModelArn`` shapes (which allow the
``:0:200k`` style context suffix):

    anthropic.claude-3-5-sonnet-20240620-v1:0                foundation model
    us.anthropic.claude-sonnet-4-6                           system inference profile ({geo}.{id})
    arn:aws:bedrock:{region}::foundation-model/{id}          foundation model
    arn:aws:bedrock:{region}:{account}:{type}/{resource}     {type}: inference-profile,
                           application-inference-profile, provisioned-model, custom-model,
                           custom-model-deployment, imported-model, prompt, (default-)prompt-router
    arn:aws:sagemaker:{region}:{account}:endpoint/{name}     other
    my-provisioned-name                                      other (names Bedrock also accepts)

Bedrock's pattern is looser than this module: it accepts any ``[a-zA-Z0-9-:.]+``, so ids such as
``..`` pass it. Because a model id becomes a URL path label, this module also rejects path
traversal, whitespace and control characters before any pattern is tried.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from spendgate.errors import InvalidModelId

MAX_MODEL_ID_LENGTH = 2048

GEO_PREFIXES: frozenset[str] = frozenset(
    {"us", "eu", "apac", "jp", "au", "ca", "in", "us-gov", "global"}
)
AUTO_PREFIX_PROVIDERS: frozenset[str] = frozenset({"anthropic", "meta", "deepseek"})

# Characters botocore leaves unencoded in a URI label (botocore.utils.SAFE_CHARS; alnum implied).
URI_LABEL_SAFE = "-._~"

_FOUNDATION = r"[a-z0-9-]{1,63}\.(?:[a-z0-9-]{1,63}\.){0,2}[a-z0-9-]{1,63}(?::[a-z0-9-]{1,63}){0,2}"
_FOUNDATION_RE = re.compile(_FOUNDATION)
# Names and loose ids Bedrock accepts (``(([0-9a-zA-Z][_-]?)+)|([a-zA-Z0-9-:.]+)``).
_OTHER_RE = re.compile(r"(?:[0-9a-zA-Z][_-]?)+|[a-zA-Z0-9:.\-]+")
_ARN_RE = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):(?P<service>bedrock|sagemaker)"
    r":(?P<region>[a-z0-9-]{1,20}):(?P<account>[0-9]{12})?"
    r":(?P<type>[a-z-]+)/(?P<resource>.+)"
)
_UNSAFE_CHAR_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
# bytes left as they are in a path label (RFC 3986 unreserved); everything else is %XX
_UNRESERVED = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + URI_LABEL_SAFE.encode()
)
_REGION_RE = re.compile(r"[a-z]{2,4}(?:-[a-z]{2,4})?-[a-z]{4,9}-[0-9]{1,2}")

_NAME = r"[a-zA-Z0-9:.\-]+"
_ID12 = r"[a-z0-9]{12}"


class ModelKind(StrEnum):
    FOUNDATION = "foundation"
    INFERENCE_PROFILE = "inference_profile"
    APPLICATION_INFERENCE_PROFILE = "application_inference_profile"
    PROVISIONED = "provisioned"
    CUSTOM = "custom"
    IMPORTED = "imported"
    PROMPT = "prompt"
    PROMPT_ROUTER = "prompt_router"
    OTHER = "other"


# (service, resource type) -> (kind, pattern of the resource part)
_ARN_RESOURCES: dict[tuple[str, str], tuple[ModelKind, re.Pattern[str]]] = {
    ("bedrock", "foundation-model"): (ModelKind.FOUNDATION, _FOUNDATION_RE),
    ("bedrock", "inference-profile"): (ModelKind.INFERENCE_PROFILE, re.compile(_NAME)),
    ("bedrock", "application-inference-profile"): (
        ModelKind.APPLICATION_INFERENCE_PROFILE,
        re.compile(_NAME),
    ),
    ("bedrock", "provisioned-model"): (ModelKind.PROVISIONED, re.compile(_ID12)),
    ("bedrock", "custom-model"): (
        ModelKind.CUSTOM,
        re.compile(rf"(?:imported|{_FOUNDATION})/{_ID12}"),
    ),
    ("bedrock", "custom-model-deployment"): (ModelKind.CUSTOM, re.compile(_ID12)),
    ("bedrock", "imported-model"): (ModelKind.IMPORTED, re.compile(_ID12)),
    ("bedrock", "prompt"): (ModelKind.PROMPT, re.compile(r"[0-9a-zA-Z]{10}(?::[0-9]{1,5})?")),
    ("bedrock", "prompt-router"): (ModelKind.PROMPT_ROUTER, re.compile(_NAME)),
    ("bedrock", "default-prompt-router"): (ModelKind.PROMPT_ROUTER, re.compile(_NAME)),
    ("sagemaker", "endpoint"): (ModelKind.OTHER, re.compile(r"[a-zA-Z0-9-]+")),
}


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a model id names, as far as the id alone can tell."""

    model_id: str
    kind: ModelKind
    base_model: str | None = None
    geo: str | None = None
    provider: str | None = None
    region: str | None = None
    account_id: str | None = None
    resource_id: str | None = None

    @property
    def scope(self) -> str:
        """``global`` for global profiles, ``geo`` for geographic ones, else ``in_region``."""
        if self.geo == "global":
            return "global"
        return "geo" if self.geo else "in_region"


def display_value(value: str, limit: int = 100) -> str:
    """``value`` cut to ``limit`` characters with non-printable characters escaped, for messages."""
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode() for c in value[:limit]
    )
    return shown + "..." if len(value) > limit else shown


def _invalid(model_id: str, constraint: str) -> InvalidModelId:
    return InvalidModelId(
        f"1 validation error detected: Value '{display_value(model_id)}' at 'modelId' "
        f"failed to satisfy constraint: {constraint}"
    )


def _check_safe(model_id: str) -> None:
    """Reject what could never be a model id or could change the meaning of a URL path."""
    if not model_id:
        raise _invalid(model_id, "Member must have length greater than or equal to 1")
    if len(model_id) > MAX_MODEL_ID_LENGTH:
        raise _invalid(
            model_id, f"Member must have length less than or equal to {MAX_MODEL_ID_LENGTH}"
        )
    if _UNSAFE_CHAR_RE.search(model_id):
        raise _invalid(model_id, "Member must not contain whitespace or control characters")
    if model_id.startswith("/"):
        raise _invalid(model_id, "Member must not start with '/'")
    if ".." in model_id or model_id == ".":
        raise _invalid(model_id, "Member must not contain a '..' or '.' path segment")
    head = model_id.split("/", 1)[0]
    if "/" in model_id and not (head.startswith("arn:") and head.count(":") == 5):
        raise _invalid(model_id, "Member must not contain '/' outside the resource part of an ARN")


def _split_geo(profile_id: str) -> tuple[str, str] | None:
    """``("us", "anthropic.x-v1:0")`` for a system inference-profile id, else None."""
    geo, _, rest = profile_id.partition(".")
    if geo in GEO_PREFIXES and _FOUNDATION_RE.fullmatch(rest):
        return geo, rest
    return None


def _provider(base_model: str | None) -> str | None:
    return base_model.split(".", 1)[0] if base_model else None


def _from_short_id(model_id: str) -> ModelRef | None:
    split = _split_geo(model_id)
    if split is not None:
        geo, base = split
        return ModelRef(model_id, ModelKind.INFERENCE_PROFILE, base, geo, _provider(base))
    if _FOUNDATION_RE.fullmatch(model_id):
        return ModelRef(model_id, ModelKind.FOUNDATION, model_id, provider=_provider(model_id))
    if _OTHER_RE.fullmatch(model_id):
        return ModelRef(model_id, ModelKind.OTHER)
    return None


def _from_arn(model_id: str) -> ModelRef | None:
    match = _ARN_RE.fullmatch(model_id)
    if match is None:
        return None
    service, rtype, resource, account = match.group("service", "type", "resource", "account")
    entry = _ARN_RESOURCES.get((service, rtype))
    if entry is None or not entry[1].fullmatch(resource):
        return None
    if (rtype == "foundation-model") != (account is None):
        return None  # only foundation-model ARNs have (and need) an empty account
    kind = entry[0]
    base = geo = None
    if kind is ModelKind.FOUNDATION:
        base = resource
    elif kind is ModelKind.INFERENCE_PROFILE and (split := _split_geo(resource)):
        geo, base = split
    return ModelRef(
        model_id,
        kind,
        base,
        geo,
        _provider(base),
        region=match.group("region"),
        account_id=account,
        resource_id=resource.rsplit("/", 1)[-1],
    )


@functools.lru_cache(maxsize=4096)
def parse_model_id(model_id: str) -> ModelRef:
    """Classify a (URL-decoded) model id; raise InvalidModelId for anything Bedrock must not see."""
    _check_safe(model_id)
    ref = _from_arn(model_id) if model_id.startswith("arn:") else _from_short_id(model_id)
    if ref is None:
        raise _invalid(
            model_id,
            "Member must be a foundation model id, an inference profile id, "
            "or the ARN of a Bedrock model, inference profile, prompt or prompt router",
        )
    return ref


@functools.lru_cache(maxsize=4096)
def encode_model_id(model_id: str) -> str:
    """Percent-encode a model id for the ``/model/{modelId}/`` label exactly as botocore does."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in model_id.encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def decode_model_id(label: str) -> str:
    """Percent-decode a path label once; malformed escapes or non-UTF-8 raise InvalidModelId."""
    if _PERCENT_RE.search(label):
        raise _invalid(label, "Member must be a correctly percent-encoded path label")
    try:
        raw = _ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 16),)), label.encode("utf-8"))
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(label, "Member must be percent-encoded UTF-8") from None


def geo_for_region(region: str) -> str:
    """The system inference-profile prefix used from ``region``: eu, apac, us-gov, else us."""
    if region.startswith("us-gov-"):
        return "us-gov"
    if region.startswith("eu-"):
        return "eu"
    if region.startswith("ap-"):
        return "apac"
    return "us"


def auto_prefix(model_id: str, region: str) -> str:
    """Prepend the region's geo prefix to a bare foundation id of AUTO_PREFIX_PROVIDERS.

    Inference profiles, ARNs and other providers' ids come back unchanged. Invalid ids raise
    InvalidModelId.
    """
    ref = parse_model_id(model_id)
    bare = ref.kind is ModelKind.FOUNDATION and ref.region is None
    if bare and ref.provider in AUTO_PREFIX_PROVIDERS:
        return f"{geo_for_region(region)}.{model_id}"
    return model_id


def is_valid_region(region: str) -> bool:
    """True only for an AWS region name (``us-east-1``, ``us-gov-west-1``, ``cn-north-1`` ...).

    Guards that a region taken from a request can never steer a request to another host.
    """
    return _REGION_RE.fullmatch(region) is not None

"""Model id parsing, validation, URL encoding and auto-prefixing, checked against botocore."""

from __future__ import annotations

import re
from functools import cache

import botocore.session
import botocore.utils
import pytest
from botocore import serialize
from botocore.loaders import Loader
from hypothesis import given
from hypothesis import strategies as st

from spendgate.bedrock.modelids import (
    AUTO_PREFIX_PROVIDERS,
    GEO_PREFIXES,
    ModelKind,
    ModelRef,
    auto_prefix,
    decode_model_id,
    encode_model_id,
    geo_for_region,
    is_valid_region,
    parse_model_id,
)
from spendgate.errors import InvalidModelId

ACCOUNT = "123456789012"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"

# modelId values from reference/samples/invocation-log-examples.jsonl and bedrock-formats.md §5.3.
SAMPLE_IDS = [
    "amazon.nova-lite-v1:0",
    "global.anthropic.claude-opus-4-6-v1",
    "arn:aws:bedrock:us-west-2:565521294060:inference-profile/global.anthropic.claude-opus-4-7",
    "arn:aws:bedrock:us-east-1:266117665083:inference-profile/us.anthropic.claude-sonnet-4-6",
    "jp.anthropic.claude-haiku-4-5-20251001-v1:0",
    "au.anthropic.claude-sonnet-4-6",
    "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "arn:aws:bedrock:us-east-1:552102268375:application-inference-profile/hkqiiam51emk",
]


@cache
def botocore_pattern(shape: str) -> re.Pattern[str]:
    model = Loader().load_service_model("bedrock-runtime", "service-2")
    return re.compile(model["shapes"][shape]["pattern"])


@cache
def converse_operation() -> tuple[serialize.Serializer, object]:
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return serialize.create_serializer(model.metadata["protocol"]), model.operation_model(
        "Converse"
    )


def botocore_path(model_id: str) -> str:
    serializer, operation = converse_operation()
    request = serializer.serialize_to_request({"modelId": model_id, "messages": []}, operation)
    return str(request["url_path"])


def ref(model_id: str, kind: ModelKind, **fields: str | None) -> ModelRef:
    return ModelRef(model_id, kind, **fields)


# --- parse: accepted forms ----------------------------------------------------------------------

FOUNDATION_IDS = [
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic"),
    ("amazon.nova-lite-v1:0", "amazon"),
    ("meta.llama3-3-70b-instruct-v1:0", "meta"),
    ("anthropic.claude-sonnet-4-6", "anthropic"),
    ("anthropic.claude-3-sonnet-20240229-v1:0:200k", "anthropic"),
    ("amazon.titan-text-express-v1:0:8k", "amazon"),
    ("cohere.embed-english-v3", "cohere"),
    ("deepseek.r1-v1:0", "deepseek"),
]


@pytest.mark.parametrize(("model_id", "provider"), FOUNDATION_IDS)
def test_foundation_ids(model_id: str, provider: str) -> None:
    assert parse_model_id(model_id) == ref(
        model_id, ModelKind.FOUNDATION, base_model=model_id, provider=provider
    )
    assert parse_model_id(model_id).scope == "in_region"


@pytest.mark.parametrize("geo", sorted(GEO_PREFIXES))
def test_system_inference_profile_for_every_geo(geo: str) -> None:
    model_id = f"{geo}.{SONNET_45}"
    parsed = parse_model_id(model_id)
    assert parsed == ref(
        model_id, ModelKind.INFERENCE_PROFILE, base_model=SONNET_45, geo=geo, provider="anthropic"
    )
    assert parsed.scope == ("global" if geo == "global" else "geo")


def test_geo_prefixes_and_auto_prefix_providers() -> None:
    assert {"us", "eu", "apac", "jp", "au", "ca", "in", "us-gov", "global"} == GEO_PREFIXES
    assert {"anthropic", "meta", "deepseek"} == AUTO_PREFIX_PROVIDERS


@pytest.mark.parametrize("partition", ["aws", "aws-us-gov", "aws-cn"])
def test_foundation_model_arn(partition: str) -> None:
    model_id = f"arn:{partition}:bedrock:us-gov-west-1::foundation-model/{SONNET_45}"
    assert parse_model_id(model_id) == ref(
        model_id,
        ModelKind.FOUNDATION,
        base_model=SONNET_45,
        provider="anthropic",
        region="us-gov-west-1",
        resource_id=SONNET_45,
    )


def test_inference_profile_arn_from_invocation_log() -> None:
    model_id = SAMPLE_IDS[2]
    assert parse_model_id(model_id) == ref(
        model_id,
        ModelKind.INFERENCE_PROFILE,
        base_model="anthropic.claude-opus-4-7",
        geo="global",
        provider="anthropic",
        region="us-west-2",
        account_id="565521294060",
        resource_id="global.anthropic.claude-opus-4-7",
    )
    assert parse_model_id(model_id).scope == "global"


def test_inference_profile_arn_without_a_known_geo_names_no_base_model() -> None:
    model_id = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/xx.anthropic.claude-v2"
    parsed = parse_model_id(model_id)
    assert (parsed.kind, parsed.base_model, parsed.geo) == (ModelKind.INFERENCE_PROFILE, None, None)
    assert parsed.resource_id == "xx.anthropic.claude-v2"


ARN_FORMS = [
    ("application-inference-profile/hkqiiam51emk", ModelKind.APPLICATION_INFERENCE_PROFILE),
    ("provisioned-model/abcdefgh1234", ModelKind.PROVISIONED),
    (f"custom-model/{SONNET_45}/abcdefgh1234", ModelKind.CUSTOM),
    ("custom-model/imported/abcdefgh1234", ModelKind.CUSTOM),
    ("custom-model-deployment/abcdefgh1234", ModelKind.CUSTOM),
    ("imported-model/abcdefgh1234", ModelKind.IMPORTED),
    ("prompt/PROMPT1234", ModelKind.PROMPT),
    ("prompt/PROMPT1234:3", ModelKind.PROMPT),
    ("prompt-router/abcdefgh1234", ModelKind.PROMPT_ROUTER),
    ("default-prompt-router/anthropic.claude:1", ModelKind.PROMPT_ROUTER),
]


@pytest.mark.parametrize(("resource", "kind"), ARN_FORMS)
@pytest.mark.parametrize("partition", ["aws", "aws-us-gov", "aws-cn"])
def test_account_arns(resource: str, kind: ModelKind, partition: str) -> None:
    model_id = f"arn:{partition}:bedrock:eu-central-1:{ACCOUNT}:{resource}"
    assert parse_model_id(model_id) == ref(
        model_id,
        kind,
        region="eu-central-1",
        account_id=ACCOUNT,
        resource_id=resource.rsplit("/", 1)[-1],
    )


@pytest.mark.parametrize(
    "model_id",
    [
        "my-provisioned_model",
        "hkqiiam51emk",
        "Anthropic.Claude-V2",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/my-endpoint",
    ],
)
def test_other_ids_bedrock_accepts(model_id: str) -> None:
    parsed = parse_model_id(model_id)
    assert (parsed.kind, parsed.base_model, parsed.provider) == (ModelKind.OTHER, None, None)


@pytest.mark.parametrize("model_id", SAMPLE_IDS + [m for m, _ in FOUNDATION_IDS])
def test_every_accepted_sample_matches_bedrocks_own_patterns(model_id: str) -> None:
    parse_model_id(model_id)
    assert botocore_pattern("ConversationalModelId").fullmatch(model_id)
    assert botocore_pattern("InvokeModelIdentifier").fullmatch(model_id)


ID_CHARS = st.sampled_from([*"abcz09AZ-_.:/", "arn:aws:bedrock:us-east-1:", "anthropic.", "us."])


@given(st.lists(ID_CHARS, min_size=1, max_size=12).map("".join))
def test_accepted_ids_are_a_subset_of_bedrocks_pattern(model_id: str) -> None:
    try:
        parse_model_id(model_id)
    except InvalidModelId:
        return
    assert botocore_pattern("ConversationalModelId").fullmatch(model_id)
    assert ".." not in model_id


# --- parse: rejected input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "constraint"),
    [
        ("", "length greater than or equal to 1"),
        ("a" * 2049, "length less than or equal to 2048"),
        ("anthropic.claude-v2\n", "whitespace or control characters"),
        ("anthropic.claude v2", "whitespace or control characters"),
        ("anthropic.claude-v2\x00", "whitespace or control characters"),
        ("anthropic.claude-v2\t", "whitespace or control characters"),
        ("../../etc", "'..'"),
        ("..", "'..'"),
        (".", "'..' or '.'"),
        ("anthropic..claude", "'..'"),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/../../x", "'..'"),
        ("/etc/passwd", "must not start with '/'"),
        ("anthropic/claude-v2", "'/' outside the resource part of an ARN"),
        ("arn:aws:bed/rock:us-east-1::foundation-model/a.b", "'/' outside the resource part"),
        ("%2e%2e", "must be a foundation model id"),
        ("anthropic.clаude-v2", "must be a foundation model id"),  # Cyrillic "а"
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/abc", "must be a foundation model id"),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:foundation-model/{SONNET_45}", "must be a"),
        ("arn:aws:bedrock:us-east-1::inference-profile/us.a.b", "must be a"),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/ABC", "must be a"),
        (f"arn:aws:s3:us-east-1:{ACCOUNT}:bucket/x", "must be a"),
        ("arn:aws:bedrock:us-east-1::foundation-model/", "must be a"),
        ("anthropic.claude?x=1", "must be a"),
        ("anthropic.claude#frag", "must be a"),
    ],
)
def test_rejected_ids(model_id: str, constraint: str) -> None:
    with pytest.raises(InvalidModelId) as info:
        parse_model_id(model_id)
    err = info.value
    assert (err.code, err.status) == ("ValidationException", 400)
    assert err.message.startswith("1 validation error detected: Value '")
    assert "at 'modelId' failed to satisfy constraint: Member must" in err.message
    assert constraint in err.message


def test_error_message_truncates_and_escapes_the_value() -> None:
    with pytest.raises(InvalidModelId) as info:
        parse_model_id("a" * 2049)
    assert f"Value '{'a' * 100}...' at" in info.value.message
    with pytest.raises(InvalidModelId) as info:
        parse_model_id("x\ny\x00z\x1b")
    assert "'x\\ny\\x00z\\x1b'" in info.value.message
    assert "\n" not in info.value.message


def test_longest_allowed_id_is_accepted() -> None:
    assert parse_model_id("a" * 2048).kind is ModelKind.OTHER


# --- URL label encoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "label"),
    [
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/abc123def456",
            f"arn%3Aaws%3Abedrock%3Aus-east-1%3A{ACCOUNT}%3Aapplication-inference-profile%2Fabc123def456",
        ),
        ("a~b_c.d-e f", "a~b_c.d-e%20f"),
    ],
)
def test_encode_matches_the_documented_examples(model_id: str, label: str) -> None:
    assert encode_model_id(model_id) == label
    assert decode_model_id(label) == model_id


@pytest.mark.parametrize("model_id", SAMPLE_IDS)
def test_encode_matches_botocores_serializer(model_id: str) -> None:
    assert botocore_path(model_id) == f"/model/{encode_model_id(model_id)}/converse"


TEXT = st.text(st.characters(codec="utf-8"), max_size=60)


@given(TEXT)
def test_encode_equals_botocore_percent_encode_and_round_trips(model_id: str) -> None:
    label = encode_model_id(model_id)
    assert label == botocore.utils.percent_encode(model_id)
    assert "/" not in label
    assert decode_model_id(label) == model_id


@pytest.mark.parametrize(
    ("label", "decoded"),
    [("%2e%2e", ".."), ("%252e%252e", "%2e%2e"), ("plain", "plain"), ("caf%C3%A9", "café")],
)
def test_decode_decodes_exactly_once(label: str, decoded: str) -> None:
    assert decode_model_id(label) == decoded


@pytest.mark.parametrize("label", ["%2e%2e", "%252e%252e", "..%2f..%2fetc", "%2Fetc"])
def test_decoded_traversal_is_rejected_by_parse(label: str) -> None:
    with pytest.raises(InvalidModelId):
        parse_model_id(decode_model_id(label))


@pytest.mark.parametrize("label", ["abc%", "abc%2", "%zz", "%g0x", "%ff", "%C3", "%ED%A0%80"])
def test_decode_rejects_bad_escapes_and_non_utf8(label: str) -> None:
    with pytest.raises(InvalidModelId, match="percent-encoded"):
        decode_model_id(label)


# --- auto prefix and regions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "geo"),
    [
        ("us-east-1", "us"),
        ("us-west-2", "us"),
        ("ca-central-1", "us"),
        ("sa-east-1", "us"),
        ("eu-west-1", "eu"),
        ("eu-central-2", "eu"),
        ("ap-northeast-1", "apac"),
        ("ap-southeast-2", "apac"),
        ("us-gov-west-1", "us-gov"),
        ("us-gov-east-1", "us-gov"),
    ],
)
def test_geo_for_region(region: str, geo: str) -> None:
    assert geo_for_region(region) == geo


@pytest.mark.parametrize(
    ("model_id", "region", "expected"),
    [
        (SONNET_45, "us-east-1", f"us.{SONNET_45}"),
        (SONNET_45, "eu-west-3", f"eu.{SONNET_45}"),
        (SONNET_45, "ap-northeast-1", f"apac.{SONNET_45}"),
        (SONNET_45, "us-gov-west-1", f"us-gov.{SONNET_45}"),
        ("meta.llama3-3-70b-instruct-v1:0", "us-west-2", "us.meta.llama3-3-70b-instruct-v1:0"),
        ("deepseek.r1-v1:0", "us-east-2", "us.deepseek.r1-v1:0"),
        ("amazon.nova-lite-v1:0", "us-east-1", "amazon.nova-lite-v1:0"),
        ("mistral.mistral-large-2407-v1:0", "eu-west-1", "mistral.mistral-large-2407-v1:0"),
        (f"us.{SONNET_45}", "eu-west-1", f"us.{SONNET_45}"),
        (f"global.{SONNET_45}", "us-east-1", f"global.{SONNET_45}"),
        (f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET_45}", "us-east-1", None),
        (SAMPLE_IDS[-1], "us-east-1", None),
        ("my-provisioned_model", "us-east-1", None),
    ],
)
def test_auto_prefix(model_id: str, region: str, expected: str | None) -> None:
    assert auto_prefix(model_id, region) == (expected or model_id)


def test_auto_prefix_rejects_invalid_ids() -> None:
    with pytest.raises(InvalidModelId):
        auto_prefix("../anthropic.claude-v2", "us-east-1")


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",
        "eu-central-2",
        "ap-southeast-3",
        "us-gov-west-1",
        "cn-north-1",
        "il-central-1",
        "mx-central-1",
        "ca-west-1",
        "us-isob-east-1",
        "eusc-de-east-1",
    ],
)
def test_valid_regions(region: str) -> None:
    assert is_valid_region(region)


def test_every_region_botocore_knows_is_valid() -> None:
    partitions = Loader().load_data("endpoints")["partitions"]
    regions = [region for partition in partitions for region in partition["regions"]]
    assert len(regions) > 30
    assert [r for r in regions if not is_valid_region(r)] == []


@pytest.mark.parametrize(
    "region",
    [
        "",
        "US-EAST-1",
        "us-east-1.evil.com",
        "evil.com",
        "us-east-1/",
        "us-east-1\n",
        " us-east-1",
        "us_east_1",
        "us-east-100",
        "us-east-",
        "useast1",
        "localhost",
        "169.254.169.254",
        "us-east-١",
        "us-east-1:443",
        "us-east-1@evil",
        "a-b-1",
    ],
)
def test_invalid_regions(region: str) -> None:
    assert not is_valid_region(region)


@given(st.text(max_size=30))
def test_a_valid_region_can_only_form_an_aws_hostname(region: str) -> None:
    if is_valid_region(region):
        assert re.fullmatch(r"[a-z0-9-]+", region)

"""The five runtime operations: turn a validated request into a reply, a body or a stream."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spendgate.bedrock.prompts import Prompt, anthropic_prompt, converse_prompt, generic_prompt
from spendgate.errors import AwsError
from spendgate.sim import validate
from spendgate.sim.cache import CacheUse, PromptCache
from spendgate.sim.models import SimModel
from spendgate.sim.replies import Reply, make_reply

NOT_CHAT = (
    "This action doesn't support the model that you provided. Try again with a supported text "
    "or chat model."
)


@dataclass(frozen=True, slots=True)
class Call:
    """One validated model call, ready to answer."""

    digest: bytes  # SHA-256 of the prompt fields: the seed of a deterministic answer
    body: dict[str, Any]
    prompt: Prompt
    max_tokens: int | None
    metadata: dict[str, str] | None


PROMPT_FIELDS = ("system", "messages", "prompt", "inputText", "texts", "tools", "toolConfig")


def prompt_digest(body: Mapping[str, Any]) -> bytes:
    """What the answer depends on: the prompt, not metadata or inference settings."""
    fields = [body.get(name) for name in PROMPT_FIELDS]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).digest()


def prompt_for(body: Mapping[str, Any], family: str, converse: bool) -> Prompt:
    if converse or family == "nova":
        return converse_prompt(body)
    if family == "anthropic":
        return anthropic_prompt(body)
    return generic_prompt(body)


def prepare(op: str, model: SimModel, raw: bytes, headers: Mapping[str, str]) -> Call:
    body = validate.parse_json_object(raw)
    converse = op.startswith("converse")
    if converse:
        if model.embedding:
            raise validate.invalid(NOT_CHAT)
        validate.check_converse(body)
        metadata = body.get("requestMetadata")
    else:
        if op == "invoke-with-response-stream" and model.embedding:
            raise validate.invalid("The model is unsupported for streaming.")
        content_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if content_type != "application/json":
            raise validate.invalid(f"The provided content type {content_type!r} isn't supported.")
        validate.check_invoke(body, model.family)
        metadata = validate.check_metadata_header(headers.get("x-amzn-bedrock-request-metadata"))
    max_tokens = validate.max_tokens_of(body, model.family)
    if max_tokens is not None and max_tokens > model.max_output:
        raise validate.invalid(
            f"The maximum tokens you requested exceeds the model limit of {model.max_output}. "
            f"Try again with a maximum tokens value that is lower than {model.max_output}."
        )
    digest = prompt_digest(body)
    return Call(digest, body, prompt_for(body, model.family, converse), max_tokens, metadata)


def answer(
    call: Call,
    model: SimModel,
    cache: PromptCache,
    now: Any,
    forced_output: int | None,
) -> Reply:
    use = cache.use(model.model_id, call.prompt, now) if model.caching else CacheUse()
    if model.embedding:
        forced_output = 0
    return make_reply(
        call.prompt.tokens,
        call.digest,
        use,
        max_tokens=call.max_tokens,
        forced_output=forced_output,
    )


def count_tokens(model: SimModel, raw: bytes) -> dict[str, int]:
    body = validate.parse_json_object(raw)
    source = body.get("input")
    if not isinstance(source, Mapping) or len(source) != 1:
        raise validate.invalid(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            "Member must set exactly one of [converse, invokeModel]"
        )
    if "converse" in source and isinstance(source["converse"], Mapping):
        return {"inputTokens": converse_prompt(source["converse"]).tokens}
    invoke = source.get("invokeModel")
    if not isinstance(invoke, Mapping) or not isinstance(invoke.get("body"), str):
        raise validate.invalid("Value at 'input.invokeModel.body' must be a base64 blob")
    try:
        inner = json.loads(base64.b64decode(invoke["body"], validate=True))
    except (ValueError, TypeError):
        raise validate.invalid("input.invokeModel.body is not base64-encoded JSON") from None
    if not isinstance(inner, dict):
        raise validate.invalid("input.invokeModel.body must be a JSON object")
    return {"inputTokens": prompt_for(inner, model.family, converse=False).tokens}


def invoke_headers(reply: Reply, model: SimModel, latency_ms: int) -> dict[str, str]:
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(reply.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(reply.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
    }
    if model.caching:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(reply.cache.read)
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(reply.cache_write)
    return headers


def prompt_texts(body: Mapping[str, Any]) -> list[str]:
    texts = body.get("texts")
    if isinstance(texts, list):
        return [str(t) for t in texts]
    return [str(body.get("inputText", ""))]


def reject_unknown(op: str) -> AwsError:
    return AwsError("UnknownOperationException", f"Unknown operation {op!r}.")

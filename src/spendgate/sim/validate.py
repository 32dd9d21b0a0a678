"""Request validation the way Bedrock does it, with Bedrock's error texts.

Shape errors read like AWS's front-end validation ("1 validation error detected: Value ... at
'messages.1.member.role' failed to satisfy constraint: ..."); model-level errors use the
sentences the Bedrock runtime returns. Every failure is a ``ValidationException``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from spendgate.bedrock.metadata import metadata_problems, parse_metadata_header
from spendgate.errors import AwsError

ROLES = ("user", "assistant")
_ENUM = "Member must satisfy enum value set: "
_MIN_LENGTH_1 = "Member must have length greater than or equal to 1"
CONTENT_KEYS = frozenset(
    {
        "text",
        "image",
        "document",
        "video",
        "audio",
        "toolUse",
        "toolResult",
        "guardContent",
        "cachePoint",
        "reasoningContent",
        "citationsContent",
        "searchResult",
    }
)


def invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _shape_error(problems: list[str]) -> AwsError:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return invalid(f"{count} validation {noun} detected: " + "; ".join(problems))


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "Malformed input request: the body is not valid JSON, please reformat your input "
            "and try again."
        ) from None
    if not isinstance(data, dict):
        raise invalid(
            "Malformed input request: expected a JSON object, please reformat your input."
        )
    return data


def check_converse(body: Mapping[str, Any]) -> None:
    problems = _message_problems(body.get("messages"))
    problems += _system_problems(body.get("system"))
    problems += _inference_problems(body.get("inferenceConfig"))
    if "requestMetadata" in body:
        problems += metadata_problems(body["requestMetadata"])
    if problems:
        raise _shape_error(problems)
    _check_conversation(body["messages"])


def _message_problems(messages: Any) -> list[str]:
    if messages is None:
        return ["Value null at 'messages' failed to satisfy constraint: Member must not be null"]
    if not isinstance(messages, list):
        return ["Value at 'messages' failed to satisfy constraint: Member must be a list"]
    problems: list[str] = []
    for i, message in enumerate(messages, start=1):
        where = f"messages.{i}.member"
        if not isinstance(message, Mapping):
            problems.append(f"Value at '{where}' failed to satisfy constraint: must be an object")
            continue
        role = message.get("role")
        if role not in ROLES:
            problems.append(
                f"Value '{role}' at '{where}.role' failed to satisfy constraint: "
                "Member must satisfy enum value set: [user, assistant]"
            )
        problems += _content_problems(message.get("content"), f"{where}.content")
    return problems


def _content_problems(content: Any, where: str) -> list[str]:
    if content is None:
        return [f"Value null at '{where}' failed to satisfy constraint: Member must not be null"]
    if not isinstance(content, list):
        return [f"Value at '{where}' failed to satisfy constraint: Member must be a list"]
    problems: list[str] = []
    for j, block in enumerate(content, start=1):
        problems += _block_problems(block, f"{where}.{j}.member")
    return problems


def _block_problems(block: Any, where: str) -> list[str]:
    if not isinstance(block, Mapping) or len(block) != 1 or next(iter(block)) not in CONTENT_KEYS:
        return [
            f"Value at '{where}' failed to satisfy constraint: must set exactly one known member"
        ]
    if "text" in block and (not isinstance(block["text"], str) or not block["text"]):
        return [f"Value at '{where}.text' failed to satisfy constraint: {_MIN_LENGTH_1}"]
    if "cachePoint" in block:
        return _cache_point_problems(block["cachePoint"], f"{where}.cachePoint")
    return []


def _cache_point_problems(point: Any, where: str) -> list[str]:
    if not isinstance(point, Mapping) or point.get("type") != "default":
        return [f"Value at '{where}.type' failed to satisfy constraint: {_ENUM}[default]"]
    if "ttl" in point and point["ttl"] not in ("5m", "1h"):
        ttl = point["ttl"]
        return [f"Value '{ttl}' at '{where}.ttl' failed to satisfy constraint: {_ENUM}[5m, 1h]"]
    return []


def _system_problems(system: Any) -> list[str]:
    if system is None:
        return []
    if not isinstance(system, list):
        return ["Value at 'system' failed to satisfy constraint: Member must be a list"]
    problems: list[str] = []
    for i, block in enumerate(system, start=1):
        problems += _block_problems(block, f"system.{i}.member")
    return problems


def _inference_problems(config: Any) -> list[str]:
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return ["Value at 'inferenceConfig' failed to satisfy constraint: must be an object"]
    problems: list[str] = []
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        problems.append(
            f"Value '{max_tokens}' at 'inferenceConfig.maxTokens' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        )
    for name in ("temperature", "topP"):
        value = config.get(name)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            problems.append(
                f"Value '{value}' at 'inferenceConfig.{name}' failed to satisfy constraint: "
                "Member must have value between 0 and 1"
            )
    return problems


def _check_conversation(messages: list[dict[str, Any]]) -> None:
    if not messages or messages[0].get("role") != "user":
        raise invalid(
            "A conversation must start with a user message. Try again with a conversation that "
            "starts with a user message."
        )
    for previous, current in itertools.pairwise(messages):
        if previous.get("role") == current.get("role"):
            raise invalid(
                "A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again."
            )


def max_tokens_of(body: Mapping[str, Any], family: str) -> int | None:
    """The output cap a request asks for, wherever its family puts it."""
    config = body.get("inferenceConfig")
    candidates: list[Any] = []
    if isinstance(config, Mapping):
        candidates += [config.get("maxTokens"), config.get("max_new_tokens")]
    candidates += [body.get("max_tokens"), body.get("max_gen_len"), body.get("maxTokens")]
    text_config = body.get("textGenerationConfig")
    if isinstance(text_config, Mapping):
        candidates.append(text_config.get("maxTokenCount"))
    return next((int(c) for c in candidates if _is_int(c)), None)


def check_invoke(body: Mapping[str, Any], family: str) -> None:
    """Model-native body checks, in Bedrock's 'Malformed input request' style."""
    required = {
        "anthropic": ("anthropic_version", "max_tokens", "messages"),
        "nova": ("messages",),
        "llama": ("prompt",),
        "mistral": ("prompt",),
        "deepseek": ("prompt",),
        "titan": ("inputText",),
        "titan-embed": ("inputText",),
        "cohere-embed": ("texts",),
        "cohere": ("message",),
        "openai": ("messages",),
    }.get(family, ())
    missing = [key for key in required if key not in body]
    if missing:
        found = ", ".join(f"#: required key [{key}] not found" for key in missing)
        raise invalid(
            f"Malformed input request: {found}, please reformat your input and try again."
        )
    if family == "anthropic":
        if not isinstance(body["messages"], list):
            raise invalid("Malformed input request: #/messages: expected type: JSONArray.")
        if not _is_int(body["max_tokens"]) or body["max_tokens"] < 1:
            raise invalid("Malformed input request: #/max_tokens: must be a positive integer.")


def check_metadata_header(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        data = parse_metadata_header(value)
    except ValueError as err:
        raise invalid(str(err)) from None
    problems = metadata_problems(data, "X-Amzn-Bedrock-Request-Metadata")
    if problems:
        raise _shape_error(problems)
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

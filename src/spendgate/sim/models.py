"""The models the simulator answers for, and how each one behaves.

``family`` picks the InvokeModel body shape; ``profile_only`` models (most newer ones) reject a
bare on-demand id exactly as Bedrock does and must be called through an inference profile;
``caching`` models honour cache points; ``embedding`` models serve InvokeModel only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimModel:
    model_id: str
    family: str
    profile_only: bool = False
    caching: bool = False
    embedding: bool = False
    max_output: int = 4096


def _claude(model_id: str, *, profile_only: bool = True, max_output: int = 64000) -> SimModel:
    return SimModel(model_id, "anthropic", profile_only, caching=True, max_output=max_output)


def _models() -> tuple[SimModel, ...]:
    return (
        _claude("anthropic.claude-3-haiku-20240307-v1:0", profile_only=False, max_output=4096),
        _claude("anthropic.claude-3-sonnet-20240229-v1:0", profile_only=False, max_output=4096),
        _claude("anthropic.claude-3-opus-20240229-v1:0", max_output=4096),
        _claude("anthropic.claude-3-5-sonnet-20240620-v1:0", profile_only=False, max_output=8192),
        _claude("anthropic.claude-3-5-sonnet-20241022-v2:0", max_output=8192),
        _claude("anthropic.claude-3-5-haiku-20241022-v1:0", max_output=8192),
        _claude("anthropic.claude-3-7-sonnet-20250219-v1:0"),
        _claude("anthropic.claude-sonnet-4-20250514-v1:0"),
        _claude("anthropic.claude-opus-4-20250514-v1:0", max_output=32000),
        _claude("anthropic.claude-opus-4-1-20250805-v1:0", max_output=32000),
        _claude("anthropic.claude-sonnet-4-5-20250929-v1:0"),
        _claude("anthropic.claude-haiku-4-5-20251001-v1:0"),
        _claude("anthropic.claude-opus-4-5-20251101-v1:0"),
        _claude("anthropic.claude-sonnet-4-6"),
        _claude("anthropic.claude-opus-4-6-v1", max_output=128000),
        _claude("anthropic.claude-opus-4-7", max_output=128000),
        SimModel("amazon.nova-micro-v1:0", "nova", caching=True, max_output=10000),
        SimModel("amazon.nova-lite-v1:0", "nova", caching=True, max_output=10000),
        SimModel("amazon.nova-pro-v1:0", "nova", caching=True, max_output=10000),
        SimModel("amazon.nova-premier-v1:0", "nova", True, caching=True, max_output=32000),
        SimModel("amazon.nova-2-lite-v1:0", "nova", True, caching=True, max_output=65000),
        SimModel("amazon.titan-text-express-v1", "titan", max_output=8192),
        SimModel("amazon.titan-text-premier-v1:0", "titan", max_output=3072),
        SimModel("amazon.titan-embed-text-v2:0", "titan-embed", embedding=True),
        SimModel("amazon.titan-embed-text-v1", "titan-embed", embedding=True),
        SimModel("meta.llama3-8b-instruct-v1:0", "llama", max_output=2048),
        SimModel("meta.llama3-70b-instruct-v1:0", "llama", max_output=2048),
        SimModel("meta.llama3-1-8b-instruct-v1:0", "llama", max_output=2048),
        SimModel("meta.llama3-1-70b-instruct-v1:0", "llama", max_output=2048),
        SimModel("meta.llama3-1-405b-instruct-v1:0", "llama", max_output=2048),
        SimModel("meta.llama3-2-1b-instruct-v1:0", "llama", True, max_output=2048),
        SimModel("meta.llama3-2-3b-instruct-v1:0", "llama", True, max_output=2048),
        SimModel("meta.llama3-2-11b-instruct-v1:0", "llama", True, max_output=2048),
        SimModel("meta.llama3-2-90b-instruct-v1:0", "llama", True, max_output=2048),
        SimModel("meta.llama3-3-70b-instruct-v1:0", "llama", True, max_output=2048),
        SimModel("meta.llama4-scout-17b-instruct-v1:0", "llama", True, max_output=8192),
        SimModel("meta.llama4-maverick-17b-instruct-v1:0", "llama", True, max_output=8192),
        SimModel("mistral.mistral-7b-instruct-v0:2", "mistral", max_output=8192),
        SimModel("mistral.mixtral-8x7b-instruct-v0:1", "mistral", max_output=4096),
        SimModel("mistral.mistral-large-2402-v1:0", "mistral", max_output=8192),
        SimModel("mistral.mistral-large-2407-v1:0", "mistral", max_output=8192),
        SimModel("mistral.pixtral-large-2502-v1:0", "mistral", True, max_output=8192),
        SimModel("deepseek.r1-v1:0", "deepseek", True, max_output=32768),
        SimModel("deepseek.v3-v1:0", "deepseek", max_output=8192),
        SimModel("openai.gpt-oss-20b-1:0", "openai", max_output=8192),
        SimModel("openai.gpt-oss-120b-1:0", "openai", max_output=8192),
        SimModel("qwen.qwen3-32b-v1:0", "openai", max_output=8192),
        SimModel("qwen.qwen3-235b-a22b-2507-v1:0", "openai", max_output=8192),
        SimModel("cohere.command-r-v1:0", "cohere", max_output=4096),
        SimModel("cohere.command-r-plus-v1:0", "cohere", max_output=4096),
        SimModel("cohere.embed-english-v3", "cohere-embed", embedding=True),
        SimModel("cohere.embed-multilingual-v3", "cohere-embed", embedding=True),
        SimModel("ai21.jamba-1-5-mini-v1:0", "openai", max_output=4096),
        SimModel("ai21.jamba-1-5-large-v1:0", "openai", max_output=4096),
        # newer than the price catalog: spendgate must show it as unpriced, never as $0
        SimModel("writer.palmyra-x5-v1:0", "openai", True, max_output=8192),
    )


def known_models() -> dict[str, SimModel]:
    """Foundation model id -> behaviour (built on demand; no work at import time)."""
    return {m.model_id: m for m in _models()}

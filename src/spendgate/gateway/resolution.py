"""Which model a call runs on: aliases, cost-center profiles and the cross-region auto-prefix.

Order: a configured alias (``claude-sonnet`` → a full id); then a cost-center profile
(``"<cost center>/<model id>" = "<application-inference-profile ARN>"``: calls of that cost
center for that model go through the profile, whose tags reach the AWS bill); then, when
enabled, the cross-region auto-prefix (a bare ``anthropic.*``, ``meta.*`` or ``deepseek.*`` id
gets the geo prefix of the call's region). The requested and the effective id are both kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from spendgate.bedrock.modelids import ModelRef, auto_prefix, parse_model_id


@dataclass(frozen=True, slots=True)
class Resolved:
    requested: str  # as the client named it
    model_id: str  # as sent to AWS
    ref: ModelRef

    @property
    def rewritten(self) -> bool:
        return self.model_id != self.requested


def resolve(
    requested: str,
    region: str,
    *,
    aliases: Mapping[str, str],
    cost_center_profiles: Mapping[str, str],
    cost_center: str | None,
    prefix: bool,
) -> Resolved:
    """Raises spendgate.errors.InvalidModelId for an id Bedrock would reject."""
    model = aliases.get(requested, requested)
    if cost_center:
        model = cost_center_profiles.get(f"{cost_center}/{model}", model)
    if prefix:
        model = auto_prefix(model, region)
    return Resolved(requested, model, parse_model_id(model))

"""Which model a call runs on: aliases, cost-center profiles and the cross-region auto-prefix.

Order: a configured alias (``claude-sonnet`` → a full id); then a cost-center profile
(``"<cost center>/<model id>" = "<application-inference-profile ARN>"``: calls of that cost
center for that model go through the profile, whose tags reach the AWS bill); then, when
enabled, the cross-region auto-prefix (a bare ``anthropic.*``, ``meta.*`` or ``deepseek.*`` id
gets the geo prefix of the call's region). The requested and the effective id are both kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from spendgate.bedrock.modelids import ModelRef, auto_prefix, parse_model_id
from spendgate.bedrock.usage import body_family
from spendgate.settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class Resolved:
    requested: str  # as the client named it
    model_id: str  # as sent to AWS
    ref: ModelRef

    @property
    def rewritten(self) -> bool:
        return self.model_id != self.requested

    @property
    def family(self) -> str | None:
        """The body family of the model the call runs on (memoised in ``body_family``)."""
        return body_family(self.ref.base_model) if self.ref.base_model else None


def resolve(
    settings: GatewaySettings, requested: str, region: str, cost_center: str | None
) -> Resolved:
    """The model a call runs on, by the gateway's aliases, cost-center profiles and auto-prefix
    setting. Raises spendgate.errors.InvalidModelId for an id Bedrock would reject."""
    model = settings.model_aliases.get(requested, requested)
    if cost_center:
        model = settings.cost_center_profiles.get(f"{cost_center}/{model}", model)
    if settings.auto_prefix:
        model = auto_prefix(model, region)
    return Resolved(requested, model, parse_model_id(model))

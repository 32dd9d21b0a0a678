"""The ASGI hot path: authenticate, attribute, budget, sign, forward and record Bedrock calls."""

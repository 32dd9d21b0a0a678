"""spendgate: self-hosted cost control for Amazon Bedrock."""

__version__ = "0.1.0"

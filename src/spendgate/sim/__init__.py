"""A Bedrock runtime simulator (``spendgate sim``) and, later, the demo traffic generator."""

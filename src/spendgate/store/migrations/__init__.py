"""Alembic migrations for spendgate's store; run them with ``spendgate.store.migrate``."""

"""The store: the only place SQL runs (SQLite or PostgreSQL, the same code).

``open_store(url)`` → ``Store`` (events, API keys); ``EventWriter`` batches the gateway's events
into it off the event loop; ``Journal`` keeps events on local disk while the database is away.
See docs/store.md.
"""

from spendgate.store.db import Store, open_store
from spendgate.store.journal import EventSink, Journal
from spendgate.store.keys import KeyRecord
from spendgate.store.writer import EventWriter, WriterStats

__all__ = [
    "EventSink",
    "EventWriter",
    "Journal",
    "KeyRecord",
    "Store",
    "WriterStats",
    "open_store",
]

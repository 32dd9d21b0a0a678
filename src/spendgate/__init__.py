"""spendgate: self-hosted cost control for Amazon Bedrock."""

import os

__version__ = "0.1.0"

# Arrow's allocator (mimalloc) hands the memory a finished question freed back to the system a
# second later, so each big question (a month of id slots grouped by id: hundreds of MB) touches
# fresh pages again; on a VM that backs guest memory lazily, that cost a first asking 0.3-1 s.
# The process keeps what it freed instead (it stays at its peak: docs/configuration.md).
# mimalloc reads this when pyarrow loads, so it is set here, before anything imports pyarrow; a
# value already in the environment wins.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "-1")

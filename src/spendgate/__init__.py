"""spendgate: self-hosted cost control for Amazon Bedrock."""

import ctypes
import os
import platform

__version__ = "0.1.0"

# Arrow's allocator (mimalloc) hands the memory a finished question freed back to the system a
# second later, so each big question (a month of id slots grouped by id: hundreds of MB) touches
# fresh pages again; on a VM that backs guest memory lazily, that cost a first asking 0.3-1 s.
# The process keeps what it freed instead (it stays at its peak: docs/configuration.md).
# mimalloc reads this when pyarrow loads, so it is set here, before anything imports pyarrow; a
# value already in the environment wins.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "-1")

# glibc's malloc (numpy's arrays: counting a month of ids makes several of 10-20 MB) does the
# same: a block that big is mapped for it and unmapped when freed, or the heap's free top is
# trimmed, so every question faulted its pages in again (counting sessions without a workflow
# took 105-140 ms where 70-95 ms with the pages kept). Blocks up to 32 MB (glibc's most) now
# come from the heap, which keeps up to 2 GB free; unless the environment tunes malloc itself.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TUNED = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
if (
    platform.libc_ver()[0] == "glibc"
    and not any(name in os.environ for name in _TUNED)
    and "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", "")
):
    _libc = ctypes.CDLL(None)
    _libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    _libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)

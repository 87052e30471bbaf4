"""Keep streamed passes from growing the heap: glibc's mmap threshold fixed at 1 MiB."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

# The memory benchmark sets this to measure glibc's own behaviour next to the project's.
ENV_OPT_OUT = "BRAINLIKE_MALLOC"


@functools.cache
def limit_heap_growth(nbytes: int = 1 << 20) -> bool:
    """glibc ``mallopt(M_MMAP_THRESHOLD, nbytes)``: blocks >= nbytes get their own mmap, returned on free.

    By default glibc raises this threshold (up to 32 MiB) after the first large free, so the
    16-64 MB batch temporaries of a streamed pass over activations land on the heap, which
    fragments and keeps growing: a 7B-shaped set (1.3 GB) grew RSS by 0.6-2x its size with no
    code holding more than one batch; with the threshold fixed, by 0.22x (metrics/bench.json,
    ``memory``). Per process, idempotent; False where the C library has no ``mallopt`` or
    ``$BRAINLIKE_MALLOC=glibc`` asks for the library default.
    """
    if os.environ.get(ENV_OPT_OUT) == "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, int(nbytes)))  # M_MMAP_THRESHOLD = -3
    except (OSError, AttributeError):
        return False

"""Keep freed heap memory for reuse instead of returning it to the kernel (glibc, Linux).

A CPU training step allocates and frees the same large activations every step. By default glibc serves
blocks above its mmap threshold with fresh `mmap`s and unmaps them on free, so every step page-faults and
zero-fills them again (on OR-sample at hidden size 64: about 10 % of TedRec's step, 30 % of SMLP4Rec's). With
mmap off and trimming raised, freed blocks stay in the heap and the next step reuses them; the process keeps
its peak heap until it exits. `TEDBENCH_MALLOC=system` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # glibc malloc.h
SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 256 << 20))
OPT_OUT = "TEDBENCH_MALLOC"
_policy = "system"


def policy() -> str:
    """The allocator policy of this process: "glibc-keep-freed" after `keep_freed_memory`, else "system"."""
    return _policy


def keep_freed_memory() -> str:
    """Apply the settings where glibc is the allocator; returns the allocator policy now in force."""
    global _policy
    if os.environ.get(OPT_OUT, "keep") == "system" or not sys.platform.startswith("linux"):
        return "system"
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return "system"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if all(mallopt(option, value) == 1 for option, value in SETTINGS):
        _policy = "glibc-keep-freed"
    return _policy

"""The allocator policy: freed large blocks stay in the process (no page faults on reuse) unless opted out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys, resource
from benchmark.engine import allocator
policy = allocator.keep_freed_memory()
import torch
def faults_of_one_allocation():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, above glibc's largest mmap threshold, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_allocation()
print(policy, faults_of_one_allocation())
"""


def _probe(**env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults_unless_opted_out() -> None:
    policy, faults = _probe(TEDBENCH_MALLOC="keep")
    assert policy == "glibc-keep-freed" and faults < 100  # the second 64 MiB block reuses the first one's pages
    policy, faults = _probe(TEDBENCH_MALLOC="system")
    assert policy == "system" and faults > 10_000  # glibc's default: a fresh mmap, 16k 4-KiB pages faulted in

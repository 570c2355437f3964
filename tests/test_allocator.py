"""The allocator policy: freed large blocks stay in the process more often (fewer page faults), unless opted out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import resource
from benchmark.engine import allocator
policy = allocator.keep_freed_memory()
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):  # five "steps": activations of 8-100 MiB written, alive together, then freed
    alive = [torch.empty(mib << 20, dtype=torch.uint8).fill_(1) for mib in (8, 26, 100, 26, 8)]
    del alive
print(policy, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(**env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_with_far_fewer_page_faults_unless_opted_out() -> None:
    kept_policy, kept = _probe(TEDBENCH_MALLOC="keep")
    system_policy, system = _probe(TEDBENCH_MALLOC="system")
    assert (kept_policy, system_policy) == ("glibc-keep-freed", "system")
    assert system > 150_000  # glibc's default: the 100 MiB blocks are fresh mmaps, faulted in again every step
    assert kept < 0.7 * system  # measured here: 69-94 k page faults against 176-181 k

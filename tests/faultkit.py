"""Helpers for fault-injection tests: run a command until it reaches a named pause point, then SIGKILL it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmark.faults import PAUSE_DIR_ENV, PAUSE_ENV

ROOT = Path(__file__).resolve().parents[1]


def tedbench_env(**extra: str) -> dict[str, str]:
    """The environment for a `tedbench` subprocess: this checkout first on the path, one thread, offline."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    env.update(extra)
    return env


def run_cli(
    args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`tedbench ARGS` in a subprocess; returns the completed process (stdout, stderr as text)."""
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args],
        cwd=cwd,
        env=env or tedbench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kill_at(args: list[str], point: str, pause_dir: Path, *, cwd: Path | None = None, timeout: float = 600) -> None:
    """Start `tedbench ARGS`, wait until it blocks at pause point `point`, then SIGKILL it.

    Fails if the process exits before reaching the point (the point was never passed).
    """
    pause_dir.mkdir(parents=True, exist_ok=True)
    env = tedbench_env(**{PAUSE_ENV: point, PAUSE_DIR_ENV: str(pause_dir)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    marker = pause_dir / f"{point}.{proc.pid}"
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"`tedbench {' '.join(args)}` exited {proc.returncode} before pause point {point}:\n{err[-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"`tedbench {' '.join(args)}` did not reach pause point {point} in {timeout} s")
        time.sleep(0.05)  # polling for the marker file, not a timing guess
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    marker.unlink()
    assert proc.returncode == -signal.SIGKILL


def orphans(root: Path) -> list[Path]:
    """Temporary files or folders (staging paths, `.tmp`, `.old`) left anywhere under `root`."""
    return sorted(
        p
        for p in Path(root).rglob("*")
        if p.name.startswith(".") and (p.name.endswith((".tmp", ".old")) or ".tmp." in p.name or ".staging" in p.name)
    )

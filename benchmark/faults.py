"""Named pause points for fault-injection tests (a test-only hook; inert unless its variable is set).

`pause_point("train.after_epoch")` does nothing in normal use. When the environment variable
`TEDBENCH_PAUSE_AT` names that point (a comma list is accepted), the process writes
`<TEDBENCH_PAUSE_DIR>/<point>.<pid>` and then blocks forever, so a test can wait for the file and
kill the process at exactly that point with a real SIGKILL — no sleeps, no timing guesses.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PAUSE_ENV = "TEDBENCH_PAUSE_AT"
PAUSE_DIR_ENV = "TEDBENCH_PAUSE_DIR"


def pause_point(name: str) -> None:
    """Block here forever if `TEDBENCH_PAUSE_AT` names this point; otherwise return at once."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or name not in {part.strip() for part in wanted.split(",")}:
        return
    folder = Path(os.environ.get(PAUSE_DIR_ENV, "."))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{name}.{os.getpid()}"
    marker.write_text(str(os.getpid()))
    while True:  # the test kills the process here
        signal.pause()

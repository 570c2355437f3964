"""tedbench's messages: the `tedbench` logger, to stderr, so stdout carries only a command's result."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

logger = logging.getLogger("tedbench")


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is at each message (as `print(file=sys.stderr)` does)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:  # through tqdm, so that a message never breaks a progress bar
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"tedbench: {level}{record.getMessage()}"


def setup(level: int = logging.INFO) -> None:
    """Messages at `level` and above go to stderr as `tedbench: [warning: ]message` (idempotent)."""
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(_Format())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

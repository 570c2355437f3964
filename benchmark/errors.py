"""The one error type the command line turns into a one-line message and a non-zero exit."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TedbenchError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The message is one line and names the file (and line) concerned where there is one.
    """


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A hint for an unknown name: the closest known one, else the whole known list."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"

"""Argument types of the command line: each checks one value and names what it accepts.

They raise `argparse.ArgumentTypeError`, which the parser turns into a one-line
`tedbench: error: argument FLAG: ...` and exit status 2 before any command runs.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from benchmark.errors import TedbenchError

SEED_LIMIT = 2**32


def _integer(text: str, low: int, high: int | None = None) -> int:
    accepted = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high})"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
    if value < low or (high is not None and value >= high):
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts, sizes, budgets)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _integer(text, 0)


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**32), the range every seeded library accepts."""
    return _integer(text, 0, SEED_LIMIT)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def device(text: str) -> str:
    """A device present on this machine (auto, cpu, cuda, cuda:K, mps); "auto" becomes the one it picks."""
    from benchmark.engine.run import pick_device

    try:
        return str(pick_device(text))
    except TedbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_value(text: str) -> Any:
    """A JSON value (64, 1e-3, true, null) or else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _checked(options: dict[str, Any]) -> dict[str, Any]:
    """`options` when every key is some model's option with an acceptable value."""
    from benchmark.registry import check_options

    try:
        return check_options(options, "")
    except TedbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key_and_rest(text: str, form: str) -> tuple[str, str]:
    key, sep, rest = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}")
    return key.strip(), rest


def assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE setting one model option (VALUE read as JSON, else as text)."""
    key, value = _key_and_rest(text, "KEY=VALUE with a model option as KEY")
    return next(iter(_checked({key: parse_value(value)}).items()))


def grid_dimension(text: str) -> tuple[str, tuple[Any, ...]]:
    """PARAM=V1,V2,... : one dimension of a tuning grid over a model option."""
    form = "PARAM=V1,V2,... with a model option as PARAM and non-empty values"
    key, rest = _key_and_rest(text, form)
    values = [v.strip() for v in rest.split(",")]
    if not all(values):
        raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}")
    parsed = tuple(parse_value(v) for v in values)
    for value in parsed:
        _checked({key: value})
    return key, parsed

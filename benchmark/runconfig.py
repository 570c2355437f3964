"""The one way from params.yaml and the command line to a run's model options and training budget.

Model options, lowest precedence first:
  1. the model's defaults (its module's `defaults`; `preset=NAME` swaps in a named preset),
  2. the profile's `model:` options that the model has (params.yaml `profiles.NAME.model`),
  3. option sources in order: an options file (`--params`, a tuned `best_params` export), `--set`,
     `--lr`, a suite's ablation options.
Training budget: `TrainConfig`'s defaults (the paper's) < the profile's `train:` < explicit flags
(`--epochs`, `--batch-size`, `--max-steps`, seed, precision). The learning rate is a model option;
the resolved `TrainConfig` carries the model's.

`train`, `tune`, `bench`, `regress`, `verify` and the pipeline all resolve through `resolve`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.engine.run import ResolvedRun, resolve_configs
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.profiles import Profile
from benchmark.registry import ModelEntry, check_options, get_model

Source = tuple[str, Mapping[str, Any]]  # (where the options come from, for errors; the options)


def options_file(path: Path, where: str | None = None) -> dict[str, Any]:
    """Model options of a JSON file: {"params": {...}} (a tuned export) or a plain mapping."""
    where = where or str(path)
    if not Path(path).is_file():
        raise TedbenchError(f"{where}: no such file (expected a JSON file of model options)")
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TedbenchError(f"{where}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise TedbenchError(f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    options = payload.get("params", payload) if isinstance(payload, dict) else payload
    if not isinstance(options, dict):
        raise TedbenchError(
            f'{where}: expected a JSON object of model options (or one under "params"), got {type(options).__name__}'
        )
    return options


def model_overrides(
    entry: ModelEntry, profile: Profile | None = None, sources: Iterable[Source] = ()
) -> dict[str, Any]:
    """The options above `entry`'s defaults: the profile's that it has, then each source (checked) in order."""
    explicit: dict[str, Any] = {}
    for where, options in sources:
        explicit.update(check_options(dict(options), where, entry))
    return profile.model_overrides(entry, explicit) if profile else explicit


def train_budget(profile: Profile | None = None, **explicit: Any) -> TrainConfig:
    """`TrainConfig` defaults, then the profile's `train:` options, then the explicit ones that are not None."""
    config = profile.train_config(TrainConfig()) if profile else TrainConfig()
    return replace(config, **{key: value for key, value in explicit.items() if value is not None})


def resolve(
    model: str, *, profile: Profile | None = None, sources: Iterable[Source] = (), budget: TrainConfig | None = None
) -> ResolvedRun:
    """Everything `train` needs to know about one run of `model`, before any data is loaded.

    `budget` defaults to `train_budget(profile)`; pass one built with `train_budget` to add explicit flags.
    """
    entry = get_model(model)
    overrides = model_overrides(entry, profile, sources)
    model_config, train_config = resolve_configs(entry, overrides, budget or train_budget(profile))
    return ResolvedRun(entry, overrides, model_config, train_config)

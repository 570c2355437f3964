"""Budget profiles and suites, declared in `params.yaml` (the file DVC tracks).

A *profile* is a training budget plus model-size overrides: `paper` (the paper's setup), `reduced`
(the committed CPU results), `demo` (the bundled sample). Its model overrides apply to every model
that has the option (`hidden_size` to all, `n_exps` only to the MoE models ...), below explicit
`--set`/`--params` values. A *suite* names what one pipeline run covers: profile, datasets, models,
seeds, the TedRec ablations of Fig. 3 and the extra text encoders of Table 5. A *tuning protocol* says
how `tedbench tune --protocol NAME` searches: sampler, trial budget, seed and, per model, the dimensions of
the model's search space it searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.registry import ModelEntry

PARAMS_FILE = Path("params.yaml")
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)} - {"seed", "learning_rate", "amp", "tf32", "compile"}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)

    def model_overrides(self, entry: ModelEntry, explicit: dict[str, Any] | None = None) -> dict[str, Any]:
        """The profile's options that `entry` has, updated with the explicit ones."""
        return {**{k: v for k, v in self.model.items() if k in entry.defaults}, **(explicit or {})}

    def train_config(self, base: TrainConfig) -> TrainConfig:
        return replace(base, **self.train)


@dataclass(frozen=True)
class Ablation:
    tag: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class Suite:
    name: str
    profile: Profile
    datasets: tuple[str, ...]
    encoder: str
    models: tuple[str, ...]
    tuned: tuple[str, ...]
    seeds: tuple[int, ...]
    ablations: tuple[Ablation, ...] = ()
    encoders: tuple[str, ...] = ()  # extra encoders for Table 5 (TedRec only)


@dataclass(frozen=True)
class TuningProtocol:
    name: str
    description: str
    sampler: str
    seed: int
    n_trials: int | None = None  # None: the grid's size
    search: dict[str, tuple[str, ...]] = field(default_factory=dict)  # model -> searched dimensions

    def dimensions(self, model: str, path: Path = PARAMS_FILE) -> tuple[str, ...] | None:
        """The dimensions `model` searches (None for a grid protocol: the model's paper grid)."""
        if self.sampler == "grid":
            return None
        if model not in self.search:
            declared = ", ".join(sorted(self.search))
            raise TedbenchError(f"{path}: tuning protocol {self.name!r} declares no search for model {model!r} (declared: {declared})")
        return self.search[model]


def load_tuning(name: str, path: Path = PARAMS_FILE) -> TuningProtocol:
    spec = _section(_params(path), "tuning", name, path)
    if spec.get("sampler") not in ("grid", "tpe"):
        raise TedbenchError(f"{path}: tuning protocol {name!r} needs sampler grid or tpe, not {spec.get('sampler')!r}")
    try:
        return TuningProtocol(
            name=name,
            description=str(spec.get("description", "")),
            sampler=spec["sampler"],
            seed=int(spec["seed"]),
            n_trials=int(spec["n_trials"]) if spec.get("n_trials") is not None else None,
            search={model: tuple(dims) for model, dims in (spec.get("search") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TedbenchError(f"{path}: tuning protocol {name!r} is malformed ({exc!r}); it needs sampler, seed, search") from exc


def _params(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TedbenchError(f"{path}: no params file (profiles and suites are declared there)")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise TedbenchError(f"{path}: expected a mapping at the top level")
    return data


def _section(data: dict[str, Any], key: str, name: str, path: Path) -> dict[str, Any]:
    known = data.get(key) or {}
    if name not in known:
        raise TedbenchError(f"{path}: no {key[:-1]} {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    return known[name] or {}


def load_profile(name: str, path: Path = PARAMS_FILE) -> Profile:
    spec = _section(_params(path), "profiles", name, path)
    unknown = sorted(set(spec.get("train") or {}) - _TRAIN_FIELDS)
    if unknown:
        raise TedbenchError(f"{path}: profile {name!r} sets unknown training options {', '.join(unknown)} (known: {', '.join(sorted(_TRAIN_FIELDS))})")
    return Profile(name, str(spec.get("description", "")), dict(spec.get("train") or {}), dict(spec.get("model") or {}))


def load_suite(name: str, path: Path = PARAMS_FILE) -> Suite:
    data = _params(path)
    spec = _section(data, "suites", name, path)
    try:
        models = tuple(spec["models"])
        return Suite(
            name=name,
            profile=load_profile(spec["profile"], path),
            datasets=tuple(spec["datasets"]),
            encoder=str(spec.get("encoder", "minilm")),
            models=models,
            tuned=tuple(spec.get("tuned", models)),
            seeds=tuple(int(s) for s in spec["seeds"]),
            ablations=tuple(Ablation(a["tag"], _assignments(a.get("set", []))) for a in spec.get("ablations") or ()),
            encoders=tuple(spec.get("encoders") or ()),
        )
    except (KeyError, TypeError) as exc:
        raise TedbenchError(f"{path}: suite {name!r} is malformed ({exc!r}); it needs profile, datasets, models, seeds") from exc


def _assignments(items: str | list[str]) -> dict[str, Any]:
    """"modulation=global" or ["modulation=global", "use_gates=false"] -> {"modulation": "global", ...}."""
    result = {}
    for item in [items] if isinstance(items, str) else items:
        key, sep, value = item.partition("=")
        if not sep:
            raise TedbenchError(f"expected KEY=VALUE, got {item!r}")
        result[key] = yaml.safe_load(value)
    return result

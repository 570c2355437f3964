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
from benchmark.errors import TedbenchError, did_you_mean
from benchmark.fsutil import safe_name
from benchmark.registry import ModelEntry, check_options, get_model

PARAMS_FILE = Path("params.yaml")
ABLATED_MODEL = "TedRec"  # the model a suite's ablations and extra text encoders apply to
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)} - {"seed", "learning_rate", "amp", "tf32", "compile"}
_TRAIN_MINIMUM = {"patience": 0}  # every other training option counts from 1


@dataclass(frozen=True)
class Processing:
    """How raw interactions become sequences (params.yaml `k_core`, `tie_order`, `tie_seed`)."""

    k_core: int = 5
    tie_order: str = "random"
    tie_seed: int = 2020


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
    processing: Processing = Processing()

    def only(self, models: tuple[str, ...]) -> Suite:
        """This suite restricted to `models` (one worker per group of models); the ablations and extra
        encoders stay with the ablated model."""
        unknown = [m for m in models if m not in self.models]
        if unknown:
            raise TedbenchError(
                f"suite {self.name!r} has no model {', '.join(unknown)} (it has: {', '.join(self.models)})"
            )
        keep_ablated = ABLATED_MODEL in models
        return replace(
            self,
            models=tuple(m for m in self.models if m in models),
            tuned=tuple(m for m in self.tuned if m in models),
            ablations=self.ablations if keep_ablated else (),
            encoders=self.encoders if keep_ablated else (),
        )


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
            raise TedbenchError(
                f"{path}: tuning protocol {self.name!r} declares no search for model {model!r} (declared: {declared})"
            )
        return self.search[model]


def load_processing(path: Path = PARAMS_FILE) -> Processing:
    """The processing settings of params.yaml (read by `dvc.yaml`'s prepare stages and by the pipeline alike)."""
    data = _params(path)
    values = {key: data[key] for key in ("k_core", "tie_order", "tie_seed") if key in data}
    for key in ("k_core", "tie_seed"):
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 0):
            raise TedbenchError(f"{path}: {key} must be an integer >= 0, got {values[key]!r}")
    if values.get("tie_order", "random") not in ("random", "file"):
        raise TedbenchError(f"{path}: tie_order must be random or file, got {values['tie_order']!r}")
    return Processing(**values)


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
        raise TedbenchError(
            f"{path}: tuning protocol {name!r} is malformed ({exc!r}); it needs sampler, seed, search"
        ) from exc


def _params(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TedbenchError(f"{path}: no params file (profiles and suites are declared there; see --params-file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise TedbenchError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise TedbenchError(f"{path}: malformed YAML{_yaml_where(exc)}") from exc
    if not isinstance(data, dict):
        raise TedbenchError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _yaml_where(exc: yaml.YAMLError) -> str:
    """ ", line L column C: problem" for a YAML error that carries a position."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    return f" at line {mark.line + 1} column {mark.column + 1}: {problem}" if mark else f": {problem}"


def _mapping(value: Any, what: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TedbenchError(f"{path}: {what} must be a mapping, got {type(value).__name__}")
    return value


def _section(data: dict[str, Any], key: str, name: str, path: Path) -> dict[str, Any]:
    known = _mapping(data.get(key), key, path)
    if name not in known:
        raise TedbenchError(f"{path}: no {key[:-1]} {name!r} ({did_you_mean(name, known)})")
    return _mapping(known[name], f"{key[:-1]} {name!r}", path)


def _check_train(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Training options of a profile: known TrainConfig fields holding integers in range."""
    unknown = sorted(set(options) - _TRAIN_FIELDS)
    if unknown:
        raise TedbenchError(
            f"{where} sets unknown training options {', '.join(unknown)} ({did_you_mean(unknown[0], _TRAIN_FIELDS)})"
        )
    defaults = TrainConfig()
    for key, value in options.items():
        low = _TRAIN_MINIMUM.get(key, 1)
        if value is None and getattr(defaults, key) is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise TedbenchError(
                f"{where}: train option {key}={value!r} is not accepted ({key} takes an integer >= {low})"
            )
    return options


def load_profile(name: str, path: Path = PARAMS_FILE) -> Profile:
    spec = _section(_params(path), "profiles", name, path)
    where = f"{path}: profile {name!r}"
    train = _check_train(_mapping(spec.get("train"), f"profile {name!r} train", path), where)
    model = check_options(_mapping(spec.get("model"), f"profile {name!r} model", path), f"{where} model options")
    return Profile(name, str(spec.get("description", "")), dict(train), dict(model))


def load_suite(name: str, path: Path = PARAMS_FILE) -> Suite:
    data = _params(path)
    spec = _section(data, "suites", name, path)
    where = f"{path}: suite {name!r}"
    for key in ("datasets", "models", "tuned", "seeds", "ablations", "encoders"):
        if spec.get(key) is not None and not isinstance(spec[key], list):
            raise TedbenchError(f"{where}: {key} must be a list, got {type(spec[key]).__name__} {spec[key]!r}")
    try:
        safe_name(name, "suite name")  # results/<suite>, runs/<suite>
        models = tuple(spec["models"])
        for model in models:
            get_model(model)
        suite = Suite(
            name=name,
            profile=load_profile(spec["profile"], path),
            datasets=tuple(safe_name(d, "dataset") for d in spec["datasets"]),
            encoder=safe_name(str(spec.get("encoder", "minilm")), "encoder"),
            models=models,
            tuned=tuple(spec.get("tuned", models)),
            seeds=tuple(_seed(s, where) for s in spec["seeds"]),
            ablations=tuple(_ablation(a, where, get_model(ABLATED_MODEL)) for a in spec.get("ablations") or ()),
            encoders=tuple(safe_name(str(e), "encoder") for e in spec.get("encoders") or ()),
            processing=load_processing(path),
        )
    except TedbenchError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise TedbenchError(f"{where}: {exc}") from exc
    except KeyError as exc:
        raise TedbenchError(f"{where} lacks {exc.args[0]!r}; a suite needs profile, datasets, models, seeds") from exc
    except TypeError as exc:
        raise TedbenchError(
            f"{where} is malformed ({exc}); a suite needs profile, datasets, models, seeds as lists"
        ) from exc
    return suite


def _seed(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TedbenchError(f"{where}: seed {value!r} is not accepted (seeds are integers >= 0)")
    return value


def _ablation(spec: Any, where: str, entry: ModelEntry) -> Ablation:
    if not isinstance(spec, dict) or "tag" not in spec:
        raise TedbenchError(f"{where}: ablation {spec!r} must be a mapping with a tag and set: KEY=VALUE")
    where = f"{where} ablation {spec['tag']!r}"
    return Ablation(
        safe_name(spec["tag"], "ablation tag"), check_options(_assignments(spec.get("set", []), where), where, entry)
    )


def _assignments(items: str | list[str], where: str) -> dict[str, Any]:
    """ "modulation=global" or ["modulation=global", "use_gates=false"] -> {"modulation": "global", ...}."""
    result = {}
    for item in [items] if isinstance(items, str) else items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise TedbenchError(f"{where}: expected KEY=VALUE, got {item!r}")
        result[key.strip()] = yaml.safe_load(value)
    return result

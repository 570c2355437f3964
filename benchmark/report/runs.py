"""Run folders -> cells: discovery, per-user metrics, epoch timings and the run profile.

A cell is (dataset, model, encoder, tag); its runs differ by seed. The encoder is None for
ID-only models (their config.json has no "encoder"), and an empty tag counts as no tag.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.engine import runstate
from benchmark.errors import TedbenchError
from benchmark.metrics import per_user_metrics, summarize

CellKey = tuple[str, str, str | None, str | None]

PAPER_DATASETS = ("ml-1m", "OR", "Office", "Food", "Movies")
PAPER_BUDGET = {"epochs": 300, "patience": 10, "batch_size": 2048, "max_steps_per_epoch": None, "user_subsample": None}
# Used for Tables 3-4 and the figures when no encoder is named: the paper's, then the offline default.
PREFERRED_ENCODERS = ("bert-cls", "minilm")
# metrics.json stores means rounded to 4 decimals; the ranks must reproduce them.
_RECORDED_TOLERANCE = 5e-5 + 1e-9


@dataclass
class Run:
    """One finished run folder; `load` checks its files, so a table never rests on a broken run."""

    path: Path
    config: dict[str, Any]
    users: int | None = None  # the user count metrics.json records

    @classmethod
    def load(cls, folder: Path) -> Run:
        """config.json, metrics.json and the rank files of `folder`, each checked (TedbenchError names the file)."""
        config = read_json_object(folder / "config.json")
        for key in ("dataset", "model"):
            if not isinstance(config.get(key), str) or not config[key]:
                raise TedbenchError(f"{folder / 'config.json'}: '{key}' must be a non-empty string")
        for key in ("encoder", "tag", "profile"):
            if config.get(key) is not None and not isinstance(config[key], str):
                raise TedbenchError(f"{folder / 'config.json'}: '{key}' must be a string or null")
        train_config = config.get("train_config")
        seed = train_config.get("seed") if isinstance(train_config, dict) else None
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TedbenchError(f"{folder / 'config.json'}: 'train_config' must be an object with an integer 'seed'")
        metrics = read_json_object(folder / "metrics.json")
        users = metrics.get("users")
        if users is not None and (not isinstance(users, int) or isinstance(users, bool) or users < 1):
            raise TedbenchError(f"{folder / 'metrics.json'}: 'users' must be a positive integer, got {users!r}")
        run = cls(folder, config, users)
        for split in ("valid", "test"):
            path = folder / f"{split}_ranks.npy"
            if split == "test" or path.exists():
                run.check_ranks(path, load_ranks(path), metrics.get(split))
        return run

    @property
    def key(self) -> CellKey:
        c = self.config
        return c["dataset"], c["model"], c.get("encoder"), c.get("tag") or None

    @property
    def seed(self) -> int:
        return int(self.config["train_config"]["seed"])

    @property
    def identity(self) -> dict[str, Any]:
        """What must be equal for runs to be seeds of one cell: everything recorded but the seed and the machine."""
        c = self.config
        train_config = {k: v for k, v in c["train_config"].items() if k != "seed"}
        return {
            "model_config": c.get("model_config"),
            "train_config": train_config,
            "encoder": c.get("encoder"),
            "embedding_key": c.get("embedding_key"),
            "dataset_manifest": c.get("dataset_manifest"),
            "tag": c.get("tag") or None,
            "profile": c.get("profile"),
        }

    @property
    def ranks_file(self) -> Path:
        return self.path / "test_ranks.npy"

    def check_ranks(self, path: Path, ranks: np.ndarray, recorded: Any) -> None:
        """`ranks` fit this run: one entry per recorded user, and the means metrics.json records."""
        if self.users is not None and len(ranks) != self.users:
            raise TedbenchError(
                f"{path}: {len(ranks):,} ranks, but {self.path / 'metrics.json'} records {self.users:,} users"
            )
        if not isinstance(recorded, dict):
            return
        for name, value in summarize(ranks).items():
            stored = recorded.get(name)
            if isinstance(stored, (int, float)) and not abs(stored - value) <= _RECORDED_TOLERANCE:
                raise TedbenchError(
                    f"{path}: gives {name} = {value:.4f}, but {self.path / 'metrics.json'} records "
                    f"{stored}; the files are from different runs"
                )

    @cached_property
    def history_lengths(self) -> np.ndarray:
        """Each ranked user's training-history length, from users.tsv (written beside the ranks)."""
        path = self.path / runstate.USERS
        lines = read_text(path).splitlines()
        if not lines or lines[0] != "user\ttrain_history":
            raise TedbenchError(f"{path}: expected a header line 'user<TAB>train_history'")
        lengths = []
        for number, line in enumerate(lines[1:], 2):
            _, _, value = line.rpartition("\t")
            if not value.isdigit():
                raise TedbenchError(f"{path}:{number}: expected '<user><TAB><history length>', got {line!r}")
            lengths.append(int(value))
        ranks = len(next(iter(self.per_user.values())))
        if len(lengths) != ranks:
            raise TedbenchError(f"{path}: lists {len(lengths):,} users, {self.ranks_file} ranks {ranks:,}")
        return np.asarray(lengths, dtype=np.int64)

    @cached_property
    def per_user(self) -> dict[str, np.ndarray]:
        """Per-user test metrics from test_ranks.npy (users in the dataset's internal order)."""
        return per_user_metrics(load_ranks(self.ranks_file))

    @cached_property
    def epoch_seconds(self) -> float | None:
        """Mean training seconds of the fine-tuning epochs (epoch >= 0; pre-training excluded)."""
        log = self.path / "log.jsonl"
        if not log.exists():
            return None
        seconds = []
        for number, line in enumerate(read_text(log).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record["epoch"] >= 0 and record.get("stage") != "pretrain":
                    seconds.append(float(record["train_seconds"]))
            except (ValueError, TypeError, KeyError) as exc:
                what = "not a log record with 'epoch' and 'train_seconds'"
                raise TedbenchError(f"{log}:{number}: {what} ({_reason(exc)})") from None
        if not np.isfinite(seconds).all():
            raise TedbenchError(f"{log}: 'train_seconds' must be finite numbers")
        return float(np.mean(seconds)) if seconds else None


@dataclass
class Cell:
    key: CellKey
    runs: list[Run] = field(default_factory=list)  # sorted by seed, one run per seed

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.seed for run in self.runs)

    @property
    def mixed(self) -> tuple[str, ...]:
        """The configuration keys in which this cell's runs differ (empty for a proper cell)."""
        first = self.runs[0].identity
        return tuple(sorted({key for run in self.runs[1:] for key in _differing(first, run.identity)}))

    @property
    def n_users(self) -> int:
        return len(next(iter(self.runs[0].per_user.values())))

    def values(self, metric: str) -> np.ndarray:
        """One test mean per seed."""
        return np.array([run.per_user[metric].mean() for run in self.runs])

    def mean(self, metric: str) -> float:
        return float(self.values(metric).mean())

    def std(self, metric: str) -> float | None:
        """Sample std (ddof=1) across seeds; None with one seed."""
        values = self.values(metric)
        return float(values.std(ddof=1)) if len(values) > 1 else None

    def per_user(self, metric: str, seeds: Iterable[int] | None = None) -> np.ndarray:
        """Each user's metric averaged over `seeds` (default: all of this cell's seeds)."""
        chosen = set(self.seeds if seeds is None else seeds)
        return np.mean([run.per_user[metric] for run in self.runs if run.seed in chosen], axis=0)

    def epoch_seconds(self) -> float | None:
        seconds = [s for s in (run.epoch_seconds for run in self.runs) if s is not None]
        return float(np.mean(seconds)) if seconds else None


class RunIndex:
    """All runs under a root, grouped into cells; a cell holds one run per seed of one configuration.

    A cell whose runs differ in anything but the seed (see `Run.identity`) is an error unless
    `allow_mixed`; then `Cell.mixed` names the differing keys and every caption says so.
    """

    def __init__(self, runs: Iterable[Run], *, allow_mixed: bool = False, running: Iterable[Path] = ()):
        self.cells: dict[CellKey, Cell] = {}
        self.running = tuple(running)  # run folders left out because a live process is still writing them
        for run in sorted(runs, key=lambda r: (str(r.key), r.seed, str(r.path))):
            cell = self.cells.setdefault(run.key, Cell(run.key))
            if cell.runs and cell.runs[-1].seed == run.seed:
                raise TedbenchError(
                    f"two runs of {_cell_name(run.key)} with seed {run.seed}: {cell.runs[-1].path} "
                    f"and {run.path}; point the report at one set of runs"
                )
            cell.runs.append(run)
        for cell in self.cells.values():
            if cell.mixed and not allow_mixed:
                first, other = cell.runs[0], next(r for r in cell.runs if _differing(cell.runs[0].identity, r.identity))
                keys = ", ".join(_differing(first.identity, other.identity))
                raise TedbenchError(
                    f"{_cell_name(cell.key)} mixes runs whose configurations differ in more than the seed: "
                    f"{first.path} and {other.path} differ in {keys}; report one configuration, or pass --allow-mixed"
                )
        _check_user_counts(run for cell in self.cells.values() for run in cell.runs)

    @classmethod
    def load(cls, root: Path, *, allow_mixed: bool = False, skip_running: bool = False) -> RunIndex:
        """Every run folder under `root` (a config.json), each checked by `Run.load` and required to be finished.

        Finished means the engine's completion marker matches the files (`runstate`): a killed, failed or
        hand-edited run is an error naming its folder, never a table cell. With `skip_running`, a run that a
        live process is still training (its LOCK held) is left out and listed in `running` instead.
        """
        runs, running = [], []
        for config in sorted(Path(root).glob("**/config.json")):
            folder = config.parent
            if skip_running and runstate.is_running(folder):
                running.append(folder)
                continue
            if (folder / runstate.FAILED).exists():
                raise TedbenchError(
                    f"{folder}: a failed run ({folder / runstate.FAILED}); rerun it or move it out of {root}"
                )
            run = Run.load(folder)
            if runstate.state(folder) != "finished":
                raise TedbenchError(
                    f"{folder}: not a finished run ({runstate.DONE} missing or not matching its files); "
                    f"finish it with `tedbench train --resume` or move it out of {root}"
                )
            runs.append(run)
        return cls(runs, allow_mixed=allow_mixed, running=running)

    def get(self, dataset: str, model: str, encoder: str | None, tag: str | None) -> Cell | None:
        """The cell; ID-only models (no encoder in their config) match any `encoder`."""
        return self.cells.get((dataset, model, encoder, tag)) or self.cells.get((dataset, model, None, tag))

    def datasets(self) -> list[str]:
        """Paper datasets first, then any other dataset with runs."""
        extra = sorted({key[0] for key in self.cells} - set(PAPER_DATASETS))
        return [*PAPER_DATASETS, *extra]

    def default_encoder(self, tag: str | None) -> str | None:
        """The first of PREFERRED_ENCODERS that a run with `tag` used, else the alphabetically first."""
        used = {key[2] for key in self.cells if key[3] == tag and key[2] is not None}
        return next((e for e in PREFERRED_ENCODERS if e in used), min(used, default=None))


def describe_profile(cells: Iterable[Cell]) -> str:
    """The run profiles (params.yaml), budget, tags, devices and any mixed cells.

    E.g. "profile reduced; NOT the paper's budget: epochs=5 (paper 300); tag: smoke; device: x86_64".
    """
    cells = list(cells)
    runs = [run for cell in cells for run in cell.runs]
    if not runs:
        return "no runs"
    differing = []
    for key, paper in PAPER_BUDGET.items():
        values = sorted({run.config["train_config"].get(key) for run in runs}, key=str)
        if values != [paper]:
            differing.append(f"{key}={'/'.join(map(str, values))} (paper {paper})")
    budget = (
        f"NOT the paper's budget: {', '.join(differing)}"
        if differing
        else "paper budget (up to 300 epochs, patience 10, batch 2048)"
    )
    profiles = sorted({run.config.get("profile") for run in runs if run.config.get("profile")})
    profile_note = [f"profile {', '.join(profiles)} (params.yaml)"] if profiles else []
    tags = sorted({run.key[3] for run in runs if run.key[3]})
    devices = sorted({_device(run.config) for run in runs})
    mixed = [f"{_cell_name(cell.key)} in {', '.join(cell.mixed)}" for cell in cells if cell.mixed]
    mixed_note = [f"MIXED configurations allowed by --allow-mixed: {'; '.join(mixed)}"] if mixed else []
    tag_note = [f"tag: {', '.join(tags)}"] if tags else []
    return "; ".join([*profile_note, budget, *tag_note, f"device: {', '.join(devices)}", *mixed_note])


def _device(config: dict[str, Any]) -> str:
    env = config.get("environment", {})
    return env.get("gpu") or env.get("cpu") or str(config.get("device", "unknown"))


def read_text(path: Path) -> str:
    """The UTF-8 text of a run file; a missing or unreadable file is a TedbenchError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TedbenchError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TedbenchError(f"{path}: cannot read ({_reason(exc)})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON file, which must hold an object of finite values."""
    text = read_text(path)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise TedbenchError(f"{path}: malformed JSON ({_reason(exc)})") from None
    if not isinstance(value, dict):
        raise TedbenchError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def load_ranks(path: Path) -> np.ndarray:
    """A rank file: a 1-D integer .npy array of 1-based ranks, one per user (TedbenchError otherwise)."""
    try:
        ranks = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TedbenchError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise TedbenchError(f"{path}: not a readable .npy array ({_reason(exc)})") from None
    if not isinstance(ranks, np.ndarray):
        ranks.close()
        raise TedbenchError(f"{path}: not a .npy array (an .npz archive?)")
    if ranks.ndim != 1:
        raise TedbenchError(f"{path}: ranks must be 1-D (one per user), got shape {ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer):
        raise TedbenchError(f"{path}: ranks must be integers, got dtype {ranks.dtype}")
    if len(ranks) == 0:
        raise TedbenchError(f"{path}: no ranks (0 users)")
    if ranks.min() < 1:
        raise TedbenchError(f"{path}: ranks must be >= 1 (1 = the target item ranked first), found {ranks.min()}")
    return ranks


def _check_user_counts(runs: Iterable[Run]) -> None:
    """Runs of one dataset and user subsample rank the same users, so their rank files have one length."""
    first: dict[tuple[str, Any], tuple[Run, int]] = {}
    for run in runs:
        group = (run.key[0], run.config["train_config"].get("user_subsample"))
        n = len(load_ranks(run.ranks_file)) if run.users is None else run.users
        reference, count = first.setdefault(group, (run, n))
        if n != count:
            raise TedbenchError(
                f"{run.ranks_file}: {n:,} users, but {reference.ranks_file} of the same dataset ({group[0]}, "
                f"user_subsample {group[1]}) has {count:,}; runs of one dataset must rank the same users"
            )


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Dotted names of the entries that differ ('train_config.epochs'); nested one level."""
    keys = []
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict) and key != "dataset_manifest":
            keys += [f"{key}.{k}" for k in sorted(x.keys() | y.keys()) if x.get(k, _ABSENT) != y.get(k, _ABSENT)]
        elif x != y:
            keys.append(key)
    return keys


_ABSENT = object()


def _cell_name(key: CellKey) -> str:
    dataset, model, encoder, tag = key
    return f"cell {dataset}/{model}" + (f" encoder {encoder}" if encoder else "") + (f" tag {tag}" if tag else "")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

"""Optuna studies: the paper's learning-rate grid by default, TPE over a model's wider space.

One study per (model, dataset, encoder, sampler, search-space version). Any number of workers
(`tedbench tune` processes, one per GPU or machine) share a study through its storage URL:
a local SQLite file by default, PostgreSQL to scale out. No scheduler of our own: the budget is
laid out as WAITING trials when the study is created (the grid points, or empty slots that TPE
fills when a worker claims them), and workers claim them through the storage's atomic
WAITING -> RUNNING transition. Hence a study never runs more trials than its budget and never a
grid point twice. A worker that dies stops sending heartbeats; its trial is marked failed and a
copy with the same parameters is queued again, so re-running the command completes the study.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from benchmark.engine.run import train
from benchmark.engine.trainer import SELECTION_METRIC, TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fsutil import write_json
from benchmark.registry import ModelEntry, SearchParam, get_model

GRACE_SECONDS = 60  # a trial whose worker sent no heartbeat for this long is failed and re-queued
MAX_RETRIES = 2
READY_ATTR = "tedbench_ready"


@dataclass
class TuneSpec:
    model: str
    dataset: str
    storage: str
    encoder: str | None = None
    sampler: str = "grid"
    n_trials: int | None = None  # default: the grid's size (grid) or 20 (tpe)
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # default: the paper's grid
    seed: int = 2020
    timeout: float | None = None
    device: str | None = None
    data_root: Path = Path("data")
    runs_root: Path = Path("runs/tune")
    results_root: Path = Path("results")
    train_config: TrainConfig = field(default_factory=TrainConfig)
    overrides: dict[str, Any] = field(default_factory=dict)  # fixed model options (e.g. a profile)
    progress: bool = True
    grace_period: int = GRACE_SECONDS
    dimensions: tuple[str, ...] | None = None  # tpe: the searched part of the model's space (default: all of it)


def default_storage(results_root: Path, dataset: str, model: str) -> str:
    path = Path(results_root) / "tuning" / dataset / f"{model}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _space_grid(entry: ModelEntry, spec: TuneSpec) -> dict[str, tuple[Any, ...]]:
    grid = dict(spec.grid or entry.paper_grid)
    unknown = sorted(set(grid) - entry.options())
    if unknown:
        raise TedbenchError(f"grid names unknown options of {entry.name}: {', '.join(unknown)}")
    return grid


def _tpe_space(entry: ModelEntry, spec: TuneSpec) -> dict[str, SearchParam]:
    """The model's search space, restricted to `spec.dimensions` when given."""
    if spec.dimensions is None:
        return entry.search_space
    unknown = sorted(set(spec.dimensions) - set(entry.search_space))
    if unknown:
        space = ", ".join(sorted(entry.search_space))
        raise TedbenchError(f"{entry.name}: no search dimension {', '.join(unknown)} (its space: {space})")
    return {k: entry.search_space[k] for k in spec.dimensions}


def study_name(entry: ModelEntry, spec: TuneSpec) -> str:
    """Stable name: a changed space, grid, budget or fixed option starts a new study."""
    if spec.sampler == "grid":
        space: Any = {k: list(v) for k, v in _space_grid(entry, spec).items()}
    else:
        space = {k: vars(v) | {"choices": list(v.choices)} for k, v in sorted(_tpe_space(entry, spec).items())}
    payload = json.dumps({"space": space, "overrides": spec.overrides, "budget": budget(entry, spec), **_training_budget(spec.train_config)}, sort_keys=True, default=str)
    version = hashlib.sha256(payload.encode()).hexdigest()[:10]
    return f"{entry.name}.{spec.dataset}.{spec.encoder or 'noenc'}.{spec.sampler}.{version}"


def _training_budget(config: TrainConfig) -> dict[str, Any]:
    """The parts of a trial's training budget that change what its value means (not the seed)."""
    return {"epochs": config.epochs, "patience": config.patience, "batch_size": config.batch_size, "max_steps_per_epoch": config.max_steps_per_epoch, "user_subsample": config.user_subsample}


def budget(entry: ModelEntry, spec: TuneSpec) -> int:
    if spec.sampler == "grid":
        size = len(list(itertools.product(*_space_grid(entry, spec).values())))
        return min(spec.n_trials or size, size)
    return spec.n_trials or 20


def heartbeat_interval(grace_period: int) -> int:
    return max(1, grace_period // 6)


warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="optuna")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=__name__)
RETRY = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)


def make_storage(url: str, grace_period: int = GRACE_SECONDS) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (SQLite for one host, PostgreSQL to scale out).

    A trial whose heartbeat stops is failed and re-queued with the same parameters.
    """
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise TedbenchError(f"storage {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB")
    attempts = 5
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval(grace_period),
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RETRY,
                engine_kwargs={"pool_pre_ping": True},
            )
        except Exception as exc:  # connection errors come from several drivers
            # Workers starting together on an empty database race to create Optuna's tables.
            if attempt + 1 < attempts and type(exc).__name__ in ("IntegrityError", "ProgrammingError", "OperationalError"):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise TedbenchError(f"storage {url.split('@')[-1]}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    raise TedbenchError(f"storage {url.split('@')[-1]}: cannot open")


def open_study(entry: ModelEntry, spec: TuneSpec, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """Create the study and lay out its budget, or join it once its creator has done so."""
    name = study_name(entry, spec)
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
        deadline = time.monotonic() + 120
        while not study.user_attrs.get(READY_ATTR):
            if time.monotonic() > deadline:
                raise TedbenchError(f"study {name}: its creator never finished laying out the budget")
            time.sleep(0.5)
        return study
    n = budget(entry, spec)
    if spec.sampler == "grid":
        grid = _space_grid(entry, spec)
        for values in itertools.islice(itertools.product(*grid.values()), n):
            study.enqueue_trial(dict(zip(grid, values)), skip_if_exists=False)
    else:
        for _ in range(n):
            study.enqueue_trial({}, skip_if_exists=False)
    for key, value in {"model": entry.name, "dataset": spec.dataset, "encoder": spec.encoder, "sampler": spec.sampler, "budget": n, "overrides": spec.overrides}.items():
        study.set_user_attr(key, value)
    study.set_user_attr(READY_ATTR, True)
    return study


def claim(study: optuna.Study, storage: optuna.storages.RDBStorage) -> int | None:
    """Atomically take one WAITING trial (WAITING -> RUNNING); its id, or None when none is left."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return trial_id
    return None


@contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat in the background while the block runs."""
    stop = threading.Event()
    interval = storage.get_heartbeat_interval() or GRACE_SECONDS

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def search_space(entry: ModelEntry, spec: TuneSpec) -> dict[str, SearchParam]:
    """What a trial suggests: the grid's dimensions, or the model's whole space for TPE."""
    if spec.sampler == "grid":
        return {k: SearchParam("categorical", choices=tuple(v)) for k, v in _space_grid(entry, spec).items()}
    return _tpe_space(entry, spec)


def suggest(trial: optuna.Trial, space: dict[str, SearchParam]) -> dict[str, Any]:
    """Parameters for a trial: queued ones (grid points, retries) as queued, the rest sampled."""
    return {name: _suggest_one(trial, name, p) for name, p in space.items()}


def _suggest_one(trial: optuna.Trial, name: str, p: SearchParam) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(name, list(p.choices))
    if p.kind == "float":
        return trial.suggest_float(name, p.low, p.high, log=p.log)
    if p.kind == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
    raise TedbenchError(f"unknown search parameter kind {p.kind!r} for {name}")


def _trial_study(name: str, storage: optuna.storages.RDBStorage, spec: TuneSpec, number: int) -> optuna.Study:
    """The study as seen by one trial: TPE seeded per trial number, median pruning; none for grids."""
    if spec.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=spec.seed + number)
        pruner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3)
    else:
        sampler, pruner = optuna.samplers.RandomSampler(seed=spec.seed + number), optuna.pruners.NopPruner()
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def _run_trial(name: str, storage: optuna.storages.RDBStorage, trial_id: int, entry: ModelEntry, spec: TuneSpec) -> FrozenTrial:
    number = storage.get_trial_number_from_id(trial_id)
    study = _trial_study(name, storage, spec, number)
    study.get_trials(deepcopy=False)  # loads the claimed trial into the study's storage cache
    trial = optuna.Trial(study, trial_id)
    params = suggest(trial, search_space(entry, spec))

    def report(epoch: int, valid: dict[str, float]) -> None:
        trial.report(round(valid[SELECTION_METRIC], 4), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    out = Path(spec.runs_root) / name / f"trial-{number:04d}"
    with heartbeat(storage, trial_id):
        try:
            metrics = train(
                entry.name, spec.dataset, data_root=spec.data_root, out=out, encoder=spec.encoder, device=spec.device,
                overrides={**spec.overrides, **params}, train_config=spec.train_config, progress=False, on_epoch=report,
            )
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED)
        except Exception:
            RETRY(study, study.tell(trial, state=TrialState.FAIL))
            raise
    trial.set_user_attr("test", metrics["test"])
    trial.set_user_attr("best_epoch", metrics["best_epoch"])
    return study.tell(trial, metrics["valid"][SELECTION_METRIC])


def export_best(study: optuna.Study, entry: ModelEntry, spec: TuneSpec) -> Path | None:
    """Write the best trial's parameters (atomically) for `tedbench train --params`."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.number))
    path = Path(spec.results_root) / "best_params" / spec.dataset / f"{entry.name}.json"
    write_json(path, {
        "model": entry.name,
        "dataset": spec.dataset,
        "encoder": spec.encoder,
        "study": study.study_name,
        "sampler": spec.sampler,
        "objective": f"best valid {SELECTION_METRIC} (rounded to 4 decimals, early-stopped)",
        "value": best.value,
        "trial": best.number,
        "complete_trials": len(complete),
        "budget": study.user_attrs.get("budget"),
        "params": {**spec.overrides, **best.params},
    })
    return path


def tune(spec: TuneSpec) -> dict[str, Any]:
    """Run one worker until the study's budget is used up (or `timeout` passes)."""
    entry = get_model(spec.model)
    if spec.sampler not in ("grid", "tpe"):
        raise TedbenchError(f"unknown sampler {spec.sampler!r} (known: grid, tpe)")
    storage = make_storage(spec.storage, spec.grace_period)
    study = open_study(entry, spec, storage)
    name = study.study_name
    total = study.user_attrs["budget"]
    started = time.monotonic()
    done_states = (TrialState.COMPLETE, TrialState.PRUNED)
    bar = tqdm(total=total, desc=name, disable=not spec.progress, dynamic_ncols=True)
    bar.update(len(study.get_trials(deepcopy=False, states=done_states)))
    ran = 0
    while spec.timeout is None or time.monotonic() - started < spec.timeout:
        optuna.storages.fail_stale_trials(study)
        trial_id = claim(study, storage)
        if trial_id is None:
            break
        frozen = _run_trial(name, storage, trial_id, entry, spec)
        ran += 1
        bar.update(1)
        tqdm.write(f"trial {frozen.number}: {frozen.state.name.lower()} value={frozen.value} params={frozen.params}", file=sys.stderr)
    bar.close()
    best_path = export_best(study, entry, spec)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {
        "study": name,
        "trials_run_by_this_worker": ran,
        "complete": states.count(TrialState.COMPLETE),
        "pruned": states.count(TrialState.PRUNED),
        "failed": states.count(TrialState.FAIL),
        "waiting": states.count(TrialState.WAITING),
        "running": states.count(TrialState.RUNNING),
        "budget": total,
        "best_params": str(best_path) if best_path else None,
    }

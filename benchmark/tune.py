"""Optuna studies: the paper's learning-rate grid by default, TPE over a model's wider space.

One study per (model, dataset, encoder, sampler, search space, budget, processed data). Any number
of workers (`tedbench tune` processes, one per GPU or machine) share a study through its storage
URL: a local SQLite file by default, PostgreSQL to scale out. No scheduler of our own: the budget is
laid out as WAITING trials, one per *slot* (a grid point, or an empty slot that TPE fills when a
worker claims it), and workers claim them through the storage's atomic WAITING -> RUNNING
transition. Hence a study never runs more trials than its budget and never a grid point twice.
Optuna's `Study.ask()` pops a WAITING trial the same way but creates a new trial when none is left,
which would let racing workers overrun the budget; and its heartbeat thread is private API
(`optuna.storages._heartbeat`), so the claim and the heartbeat thread here are a few lines over
Optuna's public storage calls, while staleness, failing and retrying stay Optuna's own.

Surviving kills:
- Set-up (create the study, lay out the slots, then mark it `tedbench_ready`) runs under the
  study's lock (`benchmark.studylock`) and only adds the slots still missing, so a worker that
  finds a study not ready (its creator was killed) completes the set-up without duplicating one.
- A claimer records the trial's heartbeat just before claiming it and its owner (pid, host name
  and pid namespace) just after. A RUNNING trial whose owner is provably gone (same host and pid
  namespace, pid dead) is failed and queued again at once by the next worker; any other trial is
  failed and queued again once its heartbeat is `grace_period` seconds old (Optuna's
  `fail_stale_trials`). The copy keeps the parameters and slot (Optuna's
  `RetryHeartbeatStaleTrialCallback`); a slot is tried at most `1 + MAX_RETRIES` times.
- The budget is complete when every slot has a COMPLETE (or, for TPE, PRUNED) trial or has failed
  `1 + MAX_RETRIES` times. Only then is the best trial exported; a rerun of the command after a
  kill completes the budget and exports, and the export is identical to an uninterrupted study's.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import socket
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

from benchmark import layout
from benchmark.engine import runstate
from benchmark.engine.run import train
from benchmark.engine.trainer import SELECTION_METRIC, TrainConfig
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import clean_orphans, file_digest, pid_alive, write_json
from benchmark.layout import RESULTS, best_params_path, processed_dir, tuning_db
from benchmark.log import logger
from benchmark.registry import ModelEntry, SearchParam, get_model
from benchmark.studylock import study_lock

GRACE_SECONDS = 60  # a trial whose worker sent no heartbeat for this long is failed and re-queued
MAX_RETRIES = 2  # a slot is tried at most 1 + MAX_RETRIES times
READY_ATTR = "tedbench_ready"  # study user attr: the whole budget is laid out
SLOT_ATTR = "tedbench_slot"  # trial user attr: the budget slot (0..budget-1), kept by retries
OWNER_ATTR = "tedbench_owner"  # trial system attr: pid, host and pid namespace of the claimer
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
TRIAL_PREFIX = "trial-"  # a trial's run folder: <runs_root>/<study>/trial-<slot, 4 digits>


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
    data_root: Path = field(default_factory=layout.data_root)
    runs_root: Path = layout.TUNE_SCRATCH
    results_root: Path = RESULTS
    train_config: TrainConfig = field(default_factory=TrainConfig)
    overrides: dict[str, Any] = field(default_factory=dict)  # fixed model options (e.g. a profile)
    progress: bool = True
    grace_period: int = GRACE_SECONDS
    dimensions: tuple[str, ...] | None = None  # tpe: the searched part of the model's space (default: all of it)
    profile: str | None = None  # recorded in each trial's config.json, as in a suite run of the same settings


def default_storage(results_root: Path, dataset: str, model: str) -> str:
    path = tuning_db(results_root, dataset, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _space_grid(entry: ModelEntry, spec: TuneSpec) -> dict[str, tuple[Any, ...]]:
    grid = dict(spec.grid or entry.paper_grid)
    unknown = sorted(set(grid) - entry.options())
    if unknown:
        raise TedbenchError(f"grid names unknown options of {entry.name}: {', '.join(unknown)}")
    return grid


def data_digest(spec: TuneSpec) -> str:
    """Identifies the processed data: the digest of its manifest.

    The manifest holds the source files' checksums, the processing options and version and the
    counts, and preparing the same inputs twice writes it byte-identically.
    """
    path = processed_dir(spec.data_root, spec.dataset) / "manifest.json"
    if not path.exists():
        raise TedbenchError(f"{path}: no processed dataset here; run `tedbench prepare --dataset {spec.dataset}` first")
    return file_digest(path)[:16]


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
    """Stable name: a changed space, grid, budget, fixed option or processed data starts a new study."""
    if spec.sampler == "grid":
        space: Any = {k: list(v) for k, v in _space_grid(entry, spec).items()}
    else:
        space = {k: vars(v) | {"choices": list(v.choices)} for k, v in sorted(_tpe_space(entry, spec).items())}
    payload = json.dumps(
        {
            "space": space,
            "overrides": spec.overrides,
            "budget": budget(entry, spec),
            "data": data_digest(spec),
            **_training_budget(spec.train_config),
        },
        sort_keys=True,
        default=str,
    )
    version = hashlib.sha256(payload.encode()).hexdigest()[:10]
    return f"{entry.name}.{spec.dataset}.{spec.encoder or 'noenc'}.{spec.sampler}.{version}"


def _training_budget(config: TrainConfig) -> dict[str, Any]:
    """The parts of a trial's training budget that change what its value means (not the seed)."""
    return {
        "epochs": config.epochs,
        "patience": config.patience,
        "batch_size": config.batch_size,
        "max_steps_per_epoch": config.max_steps_per_epoch,
        "user_subsample": config.user_subsample,
    }


def budget(entry: ModelEntry, spec: TuneSpec) -> int:
    if spec.sampler == "grid":
        size = len(list(itertools.product(*_space_grid(entry, spec).values())))
        return min(spec.n_trials or size, size)
    return spec.n_trials or 20


def heartbeat_interval(grace_period: int) -> int:
    return max(1, grace_period // 6)


warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="optuna")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=__name__)


class _Retry(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry (same parameters, user attrs and slot), less the failed attempt's owner."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)  # the callback appends to the trial's retry history
        trial.system_attrs = {k: v for k, v in trial.system_attrs.items() if k != OWNER_ATTR}
        super().__call__(study, trial)


RETRY = _Retry(max_retry=MAX_RETRIES)


def make_storage(url: str, grace_period: int = GRACE_SECONDS) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (SQLite for one host, PostgreSQL to scale out).

    A trial whose heartbeat stops is failed and re-queued with the same parameters.
    """
    if not url.startswith(("sqlite:", "postgresql")):
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
            if attempt + 1 < attempts and type(exc).__name__ in (
                "IntegrityError",
                "ProgrammingError",
                "OperationalError",
            ):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise TedbenchError(
                f"storage {url.split('@')[-1]}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from None
    raise TedbenchError(f"storage {url.split('@')[-1]}: cannot open")


def open_study(entry: ModelEntry, spec: TuneSpec, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """The study, its budget laid out: created here, joined, or its interrupted set-up completed."""
    name = study_name(entry, spec)
    if name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        if study.user_attrs.get(READY_ATTR):
            return study
    with study_lock(storage, name):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        if not study.user_attrs.get(READY_ATTR):
            _lay_out(study, entry, spec)
    return study


def _lay_out(study: optuna.Study, entry: ModelEntry, spec: TuneSpec) -> None:
    """Queue every slot not queued yet, record what the study is, then mark it ready (under the study lock)."""
    present = {t.user_attrs.get(SLOT_ATTR) for t in study.get_trials(deepcopy=False)}
    n = budget(entry, spec)
    if spec.sampler == "grid":
        grid = _space_grid(entry, spec)
        slots = [dict(zip(grid, values)) for values in itertools.islice(itertools.product(*grid.values()), n)]
    else:
        slots = [{} for _ in range(n)]
    for slot, params in enumerate(slots):
        if slot not in present:
            study.enqueue_trial(params, user_attrs={SLOT_ATTR: slot}, skip_if_exists=False)
            pause_point("tune.setup_mid")
    facts = {
        "model": entry.name,
        "dataset": spec.dataset,
        "encoder": spec.encoder,
        "sampler": spec.sampler,
        "budget": n,
        "overrides": spec.overrides,
        "data": data_digest(spec),
    }
    for key, value in facts.items():
        study.set_user_attr(key, value)
    study.set_user_attr(READY_ATTR, True)


def this_host() -> dict[str, str]:
    """Where a pid names a process: the host name and its pid namespace (boot id and namespace inode)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:  # no /proc: the host name alone
        namespace = ""
    return {"host": socket.gethostname(), "pid_namespace": namespace}


def owner_gone(owner: dict[str, Any] | None) -> bool:
    """The claimer recorded in `owner` provably no longer runs: same host and pid namespace, pid dead."""
    if not owner:
        return False  # claimed a moment ago, or by an older worker: the heartbeat decides
    here = this_host()
    return all(owner.get(key) == value for key, value in here.items()) and not pid_alive(int(owner["pid"]))


def claim(study: optuna.Study, storage: optuna.storages.RDBStorage) -> int | None:
    """Atomically take one WAITING trial (WAITING -> RUNNING); its id, or None when none is left.

    The heartbeat is recorded before the claim, so even a claimer killed at once leaves a RUNNING
    trial whose heartbeat goes stale; its owner is recorded right after.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        storage.record_heartbeat(trial_id)
        try:
            claimed = storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker claimed and finished it meanwhile
        if claimed:
            storage.set_trial_system_attr(trial_id, OWNER_ATTR, {"pid": os.getpid(), **this_host()})
            pause_point("tune.after_claim")
            return trial_id
    return None


def fail_and_retry(study: optuna.Study, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
    """Fail a RUNNING trial and queue its retry (at most MAX_RETRIES per slot); hold the study lock."""
    try:
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # finished, or failed by another worker, meanwhile
    RETRY(study, storage.get_trial(trial_id))


def recover(study: optuna.Study, storage: optuna.storages.RDBStorage) -> None:
    """Fail and re-queue the trials of dead workers, and re-queue slots whose retry was lost (under the study lock).

    A trial is dead when its owner is provably gone from this host, or its heartbeat is older than
    the grace period. A slot is lost when a worker died between failing its trial and queueing the retry.
    """
    optuna.storages.fail_stale_trials(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_gone(frozen.system_attrs.get(OWNER_ATTR)):
            fail_and_retry(study, storage, storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number))
    trials = study.get_trials(deepcopy=False)
    for slot in unfinished_slots(study):
        if not any(
            t.user_attrs.get(SLOT_ATTR) == slot and t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials
        ):
            RETRY(study, max((t for t in trials if t.user_attrs.get(SLOT_ATTR) == slot), key=lambda t: t.number))


def unfinished_slots(study: optuna.Study) -> list[int]:
    """Slots with no COMPLETE or PRUNED trial that have not yet failed 1 + MAX_RETRIES times."""
    trials = study.get_trials(deepcopy=False)
    done = {t.user_attrs.get(SLOT_ATTR) for t in trials if t.state in DONE_STATES}
    failures = [t.user_attrs.get(SLOT_ATTR) for t in trials if t.state == TrialState.FAIL]
    return [
        slot for slot in range(study.user_attrs["budget"]) if slot not in done and failures.count(slot) <= MAX_RETRIES
    ]


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


def _run_trial(
    name: str, storage: optuna.storages.RDBStorage, trial_id: int, entry: ModelEntry, spec: TuneSpec
) -> FrozenTrial:
    number = storage.get_trial_number_from_id(trial_id)
    study = _trial_study(name, storage, spec, number)
    study.get_trials(deepcopy=False)  # loads the claimed trial into the study's storage cache
    trial = optuna.Trial(study, trial_id)
    params = suggest(trial, search_space(entry, spec))

    def report(epoch: int, valid: dict[str, float]) -> None:
        pause_point("tune.mid_trial")
        logger.info(f"trial {trial.number}, epoch {epoch}: valid {SELECTION_METRIC} {valid[SELECTION_METRIC]:.4f}")
        trial.report(round(valid[SELECTION_METRIC], 4), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    # one folder per budget slot: a retry of a killed trial (same slot, same parameters) resumes its checkpoint
    out = Path(spec.runs_root) / name / f"{TRIAL_PREFIX}{trial.user_attrs[SLOT_ATTR]:04d}"
    logger.info(f"trial {trial.number} (budget slot {trial.user_attrs[SLOT_ATTR]}): {params}")
    with heartbeat(storage, trial_id):
        try:
            metrics = train(
                entry.name,
                spec.dataset,
                data_root=spec.data_root,
                out=out,
                encoder=spec.encoder,
                device=spec.device,
                overrides={**spec.overrides, **params},
                train_config=spec.train_config,
                resume=(out / runstate.CONFIG).exists(),
                progress=False,
                on_epoch=report,
                profile=spec.profile,
            )
        except optuna.TrialPruned:
            return _finish(study, storage, trial_id, trial, state=TrialState.PRUNED)
        except Exception:
            with study_lock(storage, name):
                fail_and_retry(study, storage, trial_id)
            raise
    value = metrics["valid"][SELECTION_METRIC]
    return _finish(study, storage, trial_id, trial, value, test=metrics["test"], best_epoch=metrics["best_epoch"])


def _finish(
    study: optuna.Study,
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    trial: optuna.Trial,
    value: float | None = None,
    state: TrialState | None = None,
    **attrs: Any,
) -> FrozenTrial:
    """Tell the trial's outcome, unless another worker failed it meanwhile (its heartbeat looked stale): then its
    retry counts."""
    try:
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        study.tell(trial, value, state=state, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    return storage.get_trial(trial_id)


def finished_trial(runs_root: Path, study: str, settings: dict[str, Any]) -> Path | None:
    """The run folder of a finished trial of `study` with exactly these run settings (seed included), if any."""
    for folder in sorted((Path(runs_root) / study).glob(f"{TRIAL_PREFIX}*")):
        if runstate.is_finished(folder, settings):
            return folder
    return None


def is_exported(spec: TuneSpec) -> bool:
    """The exported best parameters exist and come from exactly this spec's study (same name)."""
    path = best_params_path(spec.results_root, spec.dataset, spec.model)
    if not path.exists():
        return False
    try:
        exported = json.loads(path.read_text(encoding="utf-8"))["study"]
    except (ValueError, KeyError, TypeError) as exc:
        problem = f"not an exported best-parameters file ({type(exc).__name__})"
        raise TedbenchError(f"{path}: {problem}; delete it to re-tune") from None
    return exported == study_name(get_model(spec.model), spec)


def export_best(study: optuna.Study, entry: ModelEntry, spec: TuneSpec) -> Path | None:
    """Write the best trial's parameters (atomically) for `tedbench train --params`; only a complete budget is exported.

    Nothing in the file depends on trial numbers or on how many workers ran or were killed, so an
    interrupted study exports exactly what an uninterrupted one does.
    """
    if not study.user_attrs.get(READY_ATTR) or unfinished_slots(study):
        return None
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.user_attrs[SLOT_ATTR]))
    done = {t.user_attrs[SLOT_ATTR] for t in trials if t.state in DONE_STATES}
    failed = sorted({t.user_attrs[SLOT_ATTR] for t in trials if t.state == TrialState.FAIL} - done)
    pause_point("tune.before_export")
    path = best_params_path(spec.results_root, spec.dataset, entry.name)
    clean_orphans(path.parent)  # staging files of an export that was killed while writing
    write_json(
        path,
        {
            "model": entry.name,
            "dataset": spec.dataset,
            "encoder": spec.encoder,
            "study": study.study_name,
            "data": study.user_attrs["data"],
            "sampler": spec.sampler,
            "objective": f"best valid {SELECTION_METRIC} (rounded to 4 decimals, early-stopped)",
            "value": best.value,
            "slot": best.user_attrs[SLOT_ATTR],
            "complete_trials": len(complete),
            "budget": study.user_attrs["budget"],
            "failed_slots": failed,  # each failed 1 + MAX_RETRIES times (e.g. a diverging learning rate)
            "params": {**spec.overrides, **best.params},
        },
    )
    return path


def tune(spec: TuneSpec) -> dict[str, Any]:
    """Run one worker until the study's budget is used up (or `timeout` passes); export it once complete."""
    entry = get_model(spec.model)
    if spec.sampler not in ("grid", "tpe"):
        raise TedbenchError(f"unknown sampler {spec.sampler!r} (known: grid, tpe)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tedbench's own lines say what happens
    storage = make_storage(spec.storage, spec.grace_period)
    study = open_study(entry, spec, storage)
    name = study.study_name
    total = study.user_attrs["budget"]
    started = time.monotonic()
    bar = tqdm(total=total, desc=name, disable=not spec.progress, dynamic_ncols=True)
    bar.update(len(study.get_trials(deepcopy=False, states=DONE_STATES)))
    ran = 0
    while spec.timeout is None or time.monotonic() - started < spec.timeout:
        with study_lock(storage, name):
            recover(study, storage)
        trial_id = claim(study, storage)
        if trial_id is None:
            break
        frozen = _run_trial(name, storage, trial_id, entry, spec)
        ran += 1
        bar.update(1)
        logger.info(f"trial {frozen.number}: {frozen.state.name.lower()}, value {frozen.value}, {frozen.params}")
    bar.close()
    best_path = export_best(study, entry, spec)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    if best_path is None and unfinished_slots(study):
        logger.warning(
            f"study {name}: budget not complete, nothing exported; {states.count(TrialState.RUNNING)} trial(s) still "
            f"running (other workers, or dead ones failed after the {spec.grace_period} s heartbeat grace): "
            "run `tedbench tune` again to finish it"
        )
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

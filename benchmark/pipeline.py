"""`tedbench pipeline --suite NAME`: prepare -> embed -> tune -> train (seeds) -> report, in one process.

The same steps as `dvc.yaml`'s stages, for machines without DVC and for the bundled demo. Every step
is skipped when its output is already complete for the same request, so re-running the command
continues where it stopped. A training run counts as complete when its folder's completion marker
matches (`runstate.is_finished`), whatever checkpoints remain; an interrupted or failed run of the
same settings resumes from its last checkpoint. A run folder whose settings changed (params.yaml
edited, new tuned parameters) is re-run as a fresh attempt, as DVC re-runs a stage whose parameters
changed: its old files are cleared first, so a folder never mixes two attempts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.data.prepare import prepare_if_missing
from benchmark.engine import runstate
from benchmark.engine.run import run_settings, train
from benchmark.engine.trainer import SELECTION_METRIC, TrainConfig
from benchmark.errors import TedbenchError
from benchmark.layout import best_params_path, run_folder, suite_runs
from benchmark.profiles import ABLATED_MODEL, Suite
from benchmark.registry import get_model
from benchmark.report.build import build_report
from benchmark.runconfig import model_overrides, options_file, resolve, train_budget
from benchmark.tune import TuneSpec, default_storage, finished_trial, is_exported, tune


@dataclass(frozen=True)
class RunRequest:
    """One training run of a suite."""

    dataset: str
    model: str
    seed: int
    encoder: str | None
    tag: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # ablation options on top of the tuned ones
    variant: str | None = None  # folder suffix of runs that differ only by their text encoder

    def folder(self, runs_root: Path) -> Path:
        """<runs_root>/<dataset>/<model>[@<tag>][~<encoder>]/seed<N>, the layout of `dvc.yaml` too."""
        return run_folder(runs_root, self.dataset, self.model, self.seed, self.tag, self.variant)


@dataclass
class Countdown:
    """`[k/N]` and an ETA for a sequence of steps; the ETA extrapolates the mean wall time of the steps that did
    work (steps already complete take no time and do not count)."""

    total: int
    done: int = 0
    worked: int = 0
    seconds: float = 0.0

    def prefix(self) -> str:
        text = f"[{self.done + 1}/{self.total}]"
        if self.worked:
            text += f" ETA {format_duration(self.seconds / self.worked * (self.total - self.done))}"
        return text

    def step_done(self, seconds: float | None) -> None:
        """One more step finished; `seconds` is its wall time, or None when it had nothing to do."""
        self.done += 1
        if seconds is not None:
            self.worked += 1
            self.seconds += seconds


def format_duration(seconds: float) -> str:
    """1h05m, 4m10s, 12s."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def requests(suite: Suite) -> list[RunRequest]:
    """Every training run of the suite: models x seeds, TedRec's ablations and extra encoders."""
    runs = []
    for dataset in suite.datasets:
        for model in suite.models:
            encoder = suite.encoder if get_model(model).needs_text else None
            runs += [RunRequest(dataset, model, seed, encoder) for seed in suite.seeds]
        for ablation in suite.ablations:
            runs += [
                RunRequest(dataset, ABLATED_MODEL, seed, suite.encoder, ablation.tag, tuple(ablation.overrides.items()))
                for seed in suite.seeds
            ]
        for encoder in suite.encoders:
            runs += [RunRequest(dataset, ABLATED_MODEL, seed, encoder, variant=encoder) for seed in suite.seeds]
    return runs


def run_suite(
    suite: Suite,
    *,
    data_root: Path,
    mirror: Path | None,
    raw_root: Path,
    results_root: Path,
    trials_root: Path,
    device: str | None = None,
    log=print,
) -> dict[str, Any]:
    """Run every step of `suite`; returns the report's summary plus the wall seconds of each step.

    Writes results_root/{best_params,tuning,runs,tables,figures,metrics.json,report.html} (the layout of `dvc.yaml`);
    the tuning trials' own run folders go to `trials_root`.
    """
    runs_root = suite_runs(results_root)
    seconds: dict[str, float] = {}
    profile = suite.profile
    log(f"suite {suite.name}: profile {profile.name} -- {profile.description}")
    base = train_budget(profile)

    started = time.monotonic()
    for dataset in suite.datasets:
        processing = suite.processing
        prepare_if_missing(
            dataset,
            data_root=data_root,
            mirror=mirror,
            raw_root=raw_root,
            k=processing.k_core,
            tie_order=processing.tie_order,
            tie_seed=processing.tie_seed,
        )
    seconds["prepare"] = time.monotonic() - started

    started = time.monotonic()
    studies = Countdown(len(suite.datasets) * len(suite.tuned))
    for dataset in suite.datasets:
        for model in suite.tuned:
            entry = get_model(model)
            spec = TuneSpec(
                model=model,
                dataset=dataset,
                storage=default_storage(results_root, dataset, model),
                encoder=suite.encoder,  # as dvc.yaml's tune stage: part of the study's name for every model
                device=device,
                data_root=data_root,
                runs_root=Path(trials_root),
                results_root=results_root,
                train_config=base,
                overrides=model_overrides(entry, profile),
                progress=False,
                profile=profile.name,
            )
            if is_exported(spec):  # exported by this very study (same space, grid, budget and data)
                studies.step_done(None)
                continue
            log(f"tune {studies.prefix()}: {model} on {dataset}")
            study_started = time.monotonic()
            result = tune(spec)
            if result["best_params"] is None:
                raise TedbenchError(
                    f"tuning {model} on {dataset}: study {result['study']} exported nothing "
                    f"({result['complete']} complete, {result['running']} still running elsewhere, "
                    f"{result['failed']} failed trials); rerun once running trials finish or pass their heartbeat grace"
                )
            studies.step_done(time.monotonic() - study_started)
    seconds["tune"] = time.monotonic() - started

    started = time.monotonic()
    runs = requests(suite)
    trainings = Countdown(len(runs))
    for request in runs:
        run_started = time.monotonic()
        trained = _train_one(
            request,
            suite,
            base,
            data_root=data_root,
            runs_root=runs_root,
            results_root=results_root,
            trials_root=Path(trials_root),
            device=device,
            log=lambda message: log(f"train {trainings.prefix()}: {message}"),
        )
        trainings.step_done(time.monotonic() - run_started if trained else None)
    seconds["train"] = time.monotonic() - started

    started = time.monotonic()
    summary = build_report(runs_root, results_root, html=True, skip_running=True)
    if summary["running"]:
        log(
            f"report: left out {len(summary['running'])} runs that other workers are still training; rerun "
            f"`tedbench report --runs {runs_root} --out {results_root} --html` once they finish"
        )
    seconds["report"] = time.monotonic() - started
    return {
        **summary,
        "suite": suite.name,
        "profile": profile.name,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _train_one(
    request: RunRequest,
    suite: Suite,
    base: TrainConfig,
    *,
    data_root: Path,
    runs_root: Path,
    results_root: Path,
    trials_root: Path,
    device: str | None,
    log,
) -> bool:
    """Train (or resume) one run; False when nothing was trained (already complete, or the tuning trial copied)."""
    tuned = best_params_path(results_root, request.dataset, request.model)
    sources = [(str(tuned), options_file(tuned))] if tuned.exists() else []
    sources.append((f"ablation {request.tag}", dict(request.extra)))
    run = resolve(request.model, profile=suite.profile, sources=sources, budget=replace(base, seed=request.seed))
    overrides, config = run.overrides, run.train_config
    out = request.folder(runs_root)
    settings = run_settings(
        run.entry,
        request.dataset,
        request.encoder,
        run.model_config,
        config,
        tag=request.tag,
        profile=suite.profile.name,
    )
    if runstate.is_finished(out, settings):
        return False
    trial = (
        finished_trial(trials_root, json.loads(tuned.read_text(encoding="utf-8"))["study"], settings)
        if tuned.exists()
        else None
    )
    if trial is not None:  # the best tuning trial already is this run: same settings, same seed
        log(f"{request.model} on {request.dataset}, seed {request.seed}: the tuning trial {trial} (same settings)")
        runstate.copy_finished(trial, out, settings)
        return False
    stored = runstate.read_config(out)
    changed = runstate.differing_keys(runstate.settings_of(stored), settings) if stored is not None else []
    resume = stored is not None and not changed
    note = f" (settings changed: {', '.join(changed)}; fresh attempt)" if changed else " (resumed)" if resume else ""
    variant = (f" {request.tag}" if request.tag else "") + (f" ({request.variant} text)" if request.variant else "")
    log(f"{request.model}{variant} on {request.dataset}, seed {request.seed}{note}")
    train(
        request.model,
        request.dataset,
        data_root=data_root,
        out=out,
        encoder=request.encoder,
        device=device,
        overrides=overrides,
        train_config=config,
        resume=resume,
        overwrite=bool(changed),
        progress=False,
        tag=request.tag,
        profile=suite.profile.name,
        on_epoch=lambda epoch, valid: log(f"  epoch {epoch}: valid {SELECTION_METRIC} {valid[SELECTION_METRIC]:.4f}"),
    )
    return True

"""Fault injection for `tedbench tune`: a real SIGKILL at each pause point, then a rerun that completes the study.

Every rerun must leave exactly the budgeted COMPLETE trials (no grid point twice) and export the same
best parameters, byte for byte as JSON, as an uninterrupted study: trials are deterministic per seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from benchmark import pipeline
from benchmark.data.prepare import prepare
from benchmark.faults import PAUSE_DIR_ENV, PAUSE_ENV
from benchmark.profiles import load_suite
from benchmark.registry import get_model
from benchmark.tune import OWNER_ATTR, READY_ATTR, SLOT_ATTR, owner_gone, study_name, this_host
from tests.faultkit import kill_at, orphans, run_cli, tedbench_env

GRID = [0.001, 0.005]
TINY = [
    "--set",
    "hidden_size=16",
    "--set",
    "inner_size=32",
    "--set",
    "n_layers=1",
    "--epochs",
    "1",
    "--max-steps",
    "2",
    "--batch-size",
    "256",
]


def tune_args(data_root: Path, out: Path, storage: str | None = None) -> list[str]:
    grid = ["--grid", "learning_rate=" + ",".join(map(str, GRID))]
    where = ["--storage", storage] if storage else []
    return [
        "tune",
        "--model",
        "SASRec",
        "--dataset",
        "OR-sample",
        "--data-root",
        str(data_root),
        "--device",
        "cpu",
        "--results-dir",
        str(out / "results"),
        "--runs-dir",
        str(out / "runs"),
        *TINY,
        *grid,
        *where,
    ]


def sqlite_url(out: Path) -> str:
    return f"sqlite:///{out / 'results' / 'tuning' / 'OR-sample' / 'SASRec.db'}"


def exported(out: Path) -> Path:
    return out / "results" / "best_params" / "OR-sample" / "SASRec.json"


def only_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture(scope="module")
def reference(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What an uninterrupted study exports."""
    out = tmp_path_factory.mktemp("uninterrupted")
    done = run_cli(tune_args(sample_root, out))
    assert done.returncode == 0, done.stderr
    return json.loads(exported(out).read_text())


def assert_completed_as_uninterrupted(reference: dict, out: Path, storage: str, *, failed: int) -> None:
    trials = only_study(storage).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["learning_rate"] for t in complete) == GRID  # the budget, no grid point twice
    assert [t.state for t in trials].count(TrialState.FAIL) == failed
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    best = max(complete, key=lambda t: (t.value, -t.user_attrs[SLOT_ATTR]))
    result = json.loads(exported(out).read_text())
    assert result["value"] == best.value and result["params"]["learning_rate"] == best.params["learning_rate"]
    assert result == reference
    assert not orphans(out)


def left_by_kill(point: str, storage: str, out: Path) -> None:
    """What each kill leaves before the rerun (proof that the kill happened where it is named)."""
    study = only_study(storage)
    trials = study.get_trials()
    assert not exported(out).exists()
    if point == "tune.setup_mid":
        assert not study.user_attrs.get(READY_ATTR) and len(trials) == 1
    elif point in ("tune.after_claim", "tune.mid_trial"):
        (running,) = [t for t in trials if t.state == TrialState.RUNNING]
        assert running.system_attrs[OWNER_ATTR]["host"] == this_host()["host"]
    else:
        assert [t.state for t in trials] == [TrialState.COMPLETE] * len(GRID)


# The trial of a worker killed after claiming it is failed at once (its pid is dead on this host) and
# retried: the rerun does not wait for the 60 s heartbeat grace.
KILLS = {"tune.setup_mid": 0, "tune.after_claim": 1, "tune.mid_trial": 1, "tune.before_export": 0}


@pytest.mark.parametrize("point", list(KILLS))
def test_kill_then_rerun_completes_the_study_on_sqlite(
    point: str, reference: dict, sample_root: Path, tmp_path: Path
) -> None:
    args = tune_args(sample_root, tmp_path)
    kill_at(args, point, tmp_path / "pause")
    left_by_kill(point, sqlite_url(tmp_path), tmp_path)
    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr
    assert_completed_as_uninterrupted(reference, tmp_path, sqlite_url(tmp_path), failed=KILLS[point])
    (study,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in study.iterdir()) == ["trial-0000", "trial-0001"]  # one run folder per grid slot
    if point == "tune.mid_trial":  # the retry continued the killed trial from its checkpoint
        assert "discarding" not in rerun.stderr and "from the first epoch" not in rerun.stderr


def test_kill_mid_trial_then_rerun_on_postgres(
    reference: dict, sample_root: Path, tmp_path: Path, postgres_url: str
) -> None:
    args = tune_args(sample_root, tmp_path, postgres_url)
    kill_at(args, "tune.mid_trial", tmp_path / "pause")
    left_by_kill("tune.mid_trial", postgres_url, tmp_path)
    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr
    assert_completed_as_uninterrupted(reference, tmp_path, postgres_url, failed=1)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)  # polling a condition, not a timing guess


def waits_on_lock(storage: str, pid: int) -> Callable[[], bool]:
    """Whether process `pid` is blocked on the study lock (a PostgreSQL advisory lock, or an flock)."""
    if storage.startswith("postgresql"):
        engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
        query = sqlalchemy.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")

        def blocked() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(query).scalar())

        return blocked

    def blocked_on_flock() -> bool:  # a waiter's line in /proc/locks reads "N: -> FLOCK ... PID ..."
        lines = Path("/proc/locks").read_text().splitlines()
        return any(line.split()[1:3] == ["->", "FLOCK"] and str(pid) in line.split() for line in lines)

    return blocked_on_flock


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_worker_waiting_on_a_killed_set_up_completes_it(
    backend: str, reference: dict, sample_root: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two workers race: the first is killed mid-set-up while the second waits for it; the second lays out the rest
    once."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    storage = url or sqlite_url(tmp_path)
    args = [sys.executable, "-m", "benchmark.cli", *tune_args(sample_root, tmp_path, url)]
    pause = tmp_path / "pause"
    first = subprocess.Popen(
        args,
        env=tedbench_env(**{PAUSE_ENV: "tune.setup_mid", PAUSE_DIR_ENV: str(pause)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: (pause / f"tune.setup_mid.{first.pid}").exists() or first.poll() is not None, "the first worker pauses"
    )
    assert first.poll() is None
    second = subprocess.Popen(args, env=tedbench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(waits_on_lock(storage, second.pid), "the second worker waits for the set-up lock")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert json.loads(out[out.index("{") :])["trials_run_by_this_worker"] == len(GRID)
    assert_completed_as_uninterrupted(reference, tmp_path, storage, failed=0)


def test_owner_is_gone_only_when_provably_dead_on_this_host() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = this_host()
    assert owner_gone({"pid": dead.pid, **here})
    assert not owner_gone({"pid": os.getpid(), **here})
    assert not owner_gone({"pid": dead.pid, **here, "host": here["host"] + "-elsewhere"})
    assert not owner_gone({"pid": dead.pid, **here, "pid_namespace": "another"})
    assert not owner_gone(None)


SUITE = {
    "profiles": {
        "tiny": {"description": "TINY", "train": {"epochs": 1, "max_steps_per_epoch": 2}, "model": {"hidden_size": 16}}
    },
    "suites": {
        "tiny": {"profile": "tiny", "datasets": ["OR-sample"], "models": ["SASRec"], "tuned": ["SASRec"], "seeds": [1]}
    },
}


def test_pipeline_retunes_when_the_exported_study_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skipped only for best parameters exported by the very same study; other data is another study."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SUITE))
    suite = load_suite("tiny", tmp_path / "params.yaml")
    results, data = tmp_path / "results", tmp_path / "data"
    specs = []

    def fake_tune(spec):
        specs.append(spec)
        path = results / "best_params" / "OR-sample" / "SASRec.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"study": study_name(get_model("SASRec"), spec), "params": {}}))
        return {"best_params": str(path)}

    monkeypatch.setattr(pipeline, "tune", fake_tune)
    monkeypatch.setattr(pipeline, "_train_one", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "build_report", lambda *args, **kwargs: {"running": []})

    def tunes() -> int:
        before = len(specs)
        pipeline.run_suite(
            suite,
            data_root=data,
            mirror=None,
            raw_root=tmp_path / "raw",
            results_root=results,
            trials_root=tmp_path / "trials",
            device="cpu",
            log=lambda _: None,
        )
        return len(specs) - before

    assert tunes() == 1 and tunes() == 0  # tuned, then skipped: the export is this study's
    first = study_name(get_model("SASRec"), specs[0])
    stale = results / "best_params" / "OR-sample" / "SASRec.json"
    stale.write_text(json.dumps({"study": first.replace(".grid.", ".tpe."), "params": {}}))
    assert tunes() == 1  # another study's export (space, grid or budget changed)
    prepare("OR-sample", data_root=data, mirror=None, raw_root=tmp_path / "raw", download=False, k=3, force=True)
    assert tunes() == 1  # the processed data changed: a new study
    assert study_name(get_model("SASRec"), specs[-1]) != first

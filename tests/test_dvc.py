"""dvc.yaml: generated from params.yaml and the imports, and clean on a fresh clone of the committed results."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark import dvcgen
from benchmark.imports import closure
from tests.faultkit import tedbench_env

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = {"prepare-OR-sample", "embed-OR-sample-minilm", "embed-OR-sample-random"}


def test_committed_dvc_yaml_is_what_the_code_generates() -> None:
    assert (ROOT / "dvc.yaml").read_text(encoding="utf-8") == dvcgen.render(ROOT / "params.yaml"), (
        "dvc.yaml is stale: run `tedbench dvc-yaml`"
    )


def test_code_deps_are_the_imports_of_the_model_and_the_step() -> None:
    fmlp = dvcgen.code_deps("train", "FMLP-Rec")
    assert {"baselines/fmlprec.py", "benchmark/layers/sasrec.py", "benchmark/engine/trainer.py"} <= set(fmlp)
    assert not {
        "baselines/sasrec.py",
        "baselines/fearec.py",
        "tedrec/model.py",
        "benchmark/report/build.py",
        "benchmark/tune.py",
    } & set(fmlp)
    plugin = dvcgen.code_deps("train", "DLFS-Rec+TedRec")  # the backbone is found through the class, not an import
    assert {"baselines/dlfsrec.py", "tedrec/plugin.py", "tedrec/fusion.py"} <= set(plugin)
    report = dvcgen.code_deps("report")
    assert not [path for path in report if path.startswith(("baselines/", "tedrec/", "benchmark/engine/trainer"))]


def test_closure_skips_type_checking_imports_and_runs_parent_packages(tmp_path: Path) -> None:
    package = tmp_path / "benchmark"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import helper\n")
    (package / "sub" / "helper.py").write_text("")
    (package / "typed.py").write_text("")
    (package / "lazy.py").write_text("")
    (package / "main.py").write_text(
        "from typing import TYPE_CHECKING\nimport numpy\nif TYPE_CHECKING:\n    from benchmark import typed\n"
        "def f():\n    from .lazy import x\n    import benchmark.sub\n"
    )
    found = {path.as_posix() for path in closure(["benchmark.main"], tmp_path)}
    assert found == {
        "benchmark/__init__.py",
        "benchmark/main.py",
        "benchmark/lazy.py",
        "benchmark/sub/__init__.py",
        "benchmark/sub/helper.py",
    }


def test_params_are_the_keys_that_change_a_result() -> None:
    stages = dvcgen.stages(ROOT / "params.yaml")
    sasrec = stages[dvcgen.stage_name("train", "demo", "OR-sample", "SASRec", "seed2020")]
    assert not [key for key in sasrec["params"] if key.endswith(("n_exps", "description"))]
    assert all(
        key in ("profiles.demo.train", "profiles.demo.model.hidden_size", "profiles.demo.model.inner_size")
        for key in sasrec["params"]
    )
    assert stages["prepare-OR-sample"]["params"] == ["k_core", "tie_order", "tie_seed"]


def _dvc(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_a_fresh_clone_is_up_to_date_and_its_data_stages_are_byte_identical(tmp_path: Path) -> None:
    """On a clone of the committed tree, `dvc status` and `dvc repro --dry` find nothing to do; forcing the data
    stages (prepare, embed) re-creates their committed outputs byte for byte (text embeddings: to 1e-5 on another
    CPU's kernels) and, with the committed bytes restored, leaves every other stage up to date; a one-line change
    to one model's module marks exactly that model's stages stale."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", head], cwd=clone, check=True)
    env = tedbench_env(PYTHONPATH=str(clone))  # one thread, as dvc.lock was written (byte-identical embeddings)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # the `tedbench` script

    def stale() -> set[str]:
        status = json.loads(_dvc(["status", "--json"], clone, env).stdout or "{}")
        return {name for name in status if not name.endswith(".dvc")}  # datasets.dvc: raw files, no remote

    assert stale() == set()
    assert "Running stage" not in _dvc(["repro", "--dry"], clone, env).stdout
    for stage in sorted(DATA_STAGES):
        _dvc(["repro", "--force", "--single-item", stage], clone, env)
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    changed_paths = {line[3:] for line in changed.stdout.splitlines()}
    # Byte-identical, except that a transformer text encoder's float32 output may differ in its last bits on
    # another CPU's vector kernels (AVX2 vs AVX-512: up to 1.2e-6): those arrays must agree to 1e-5.
    encoded = {path for path in changed_paths if path.startswith("data/embeddings/") and path.endswith(".npy")}
    assert changed_paths <= encoded | {"dvc.lock"}, changed.stdout
    for path in encoded:
        committed = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=clone, capture_output=True, check=True)
        np.testing.assert_allclose(np.load(clone / path), np.load(io.BytesIO(committed.stdout)), rtol=0, atol=1e-5)
    subprocess.run(["git", "checkout", "--quiet", "--", "."], cwd=clone, check=True)
    repro = _dvc(["repro"], clone, env)
    assert "Running stage" not in repro.stdout, repro.stdout
    module = clone / "baselines" / "fmlprec.py"
    module.write_text(module.read_text(encoding="utf-8") + "# one more line\n", encoding="utf-8")
    assert stale() == {
        "tune-demo-OR-sample-FMLP-Rec",
        "train-demo-OR-sample-FMLP-Rec-seed2020",
        "train-demo-OR-sample-FMLP-Rec-seed2021",
    }

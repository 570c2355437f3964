"""tedbench's DIF-SR side by side with the official code (AIM-SE/DIF-SR, a patched RecBole 1.0.0).

`python -m benchmark.fidelity.difsr --checkout DIR --python PY --dataset ml-1m ...`

Data: tedbench's processed dataset (after the fixed user subsample) is exported as the official code's atomic
files with `verify.write_atomic` (`.inter`: user, item, position as timestamp) and an `.item` file that lists
every item id with its categorical attributes as a `token_seq` field (ml-1m: genres). The official code then
runs its own leave-one-out split (`LS: valid_and_test`, order `TO`) on these files; its logged numbers of
users, items and interactions must equal tedbench's.

Official side: its own run script `run_recbole.py --model=SASRecD` with its config for the closest dataset
(`configs/Amazon_Beauty.yaml`: categories as a `token_seq` attribute stream, λ 10) followed by an overlay
yaml that sets the data, the attribute field, tedbench's model sizes and the training budget. It runs as a
subprocess under its own interpreter (an older numpy/pandas stack); its log is parsed into `SideRun`s.

tedbench side: `verify.run_tedbench` with the same options. Its attribute stream is the item text (TedRec's
text variant), the official code's is the genre embedding; the attribute predictor (λ) is trained on the same
multi-hot genre labels on both sides. The report is `verify.write_report`'s, with the differences listed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from benchmark import argtypes, layout
from benchmark.data.store import load_sequences
from benchmark.engine.run import load_dataset, resolve_configs
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.reference import checkout_commit
from benchmark.fidelity.verify import (
    DATASET_NAME,
    ReportSide,
    SideRun,
    run_tedbench,
    write_atomic,
    write_report,
)
from benchmark.fsutil import write_text
from benchmark.layout import processed_dir
from benchmark.registry import get_model

MODEL = "DIF-SR"
OFFICIAL_MODEL = "SASRecD"
OFFICIAL_CONFIG = "configs/Amazon_Beauty.yaml"
ATTRIBUTE_FIELD = "genre"
# tedbench option -> official config key (list-valued where the official code takes one value per feature)
OPTIONS = {
    "n_layers": "n_layers",
    "n_heads": "n_heads",
    "hidden_size": "hidden_size",
    "inner_size": "inner_size",
    "hidden_dropout_prob": "hidden_dropout_prob",
    "attn_dropout_prob": "attn_dropout_prob",
    "hidden_act": "hidden_act",
    "layer_norm_eps": "layer_norm_eps",
    "initializer_range": "initializer_range",
    "fusion_type": "fusion_type",
    "learning_rate": "learning_rate",
}
LIST_OPTIONS = {"attribute_hidden_size": "attribute_hidden_size", "lambda_attr": "lamdas"}

# one thread; torch >= 2.6 loads checkpoints weights-only by default, which rejects the official checkpoint (it
# pickles RecBole's Config): the official code reloads its own best checkpoint before the test evaluation
OFFICIAL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRAIN_LINE = re.compile(r"epoch (\d+) training \[time: [\d.]+s, train loss: ([-+\d.eE]+|nan)\]")
VALID_LINE = re.compile(r"epoch (\d+) evaluating \[time: [\d.]+s, valid_score: ([-+\d.eE]+)\]")
BEST_LINE = re.compile(r"Saving current best")
TEST_LINE = re.compile(r"test result: (.*)$", re.MULTILINE)
METRIC_PAIR = re.compile(r"'(\w+@\d+)'\s*[,:]\s*([-+\d.eE]+)")
COUNT_LINE = re.compile(r"The number of (users|items|inters): (\d+)")
SEED_LINE = re.compile(r"^\s*seed = (\d+)\s*$")


# -- export -----------------------------------------------------------------------------------------
def item_file(attributes: list[list[str]]) -> str:
    """`NAME.item`: every item id 1..N−1 with its attributes as one space-separated `token_seq` field."""
    lines = [f"item_id:token\t{ATTRIBUTE_FIELD}:token_seq"]
    for item, tokens in enumerate(attributes, start=1):
        bad = [t for t in tokens if not t or re.search(r"\s", t)]
        if bad:
            raise TedbenchError(
                f"item {item}: attribute {bad[0]!r} is empty or holds whitespace "
                "(the official code splits token_seq fields on spaces)"
            )
        lines.append(f"{item}\t{' '.join(tokens)}")
    return "\n".join(lines) + "\n"


def export(splits, attributes: list[list[str]], folder: Path) -> None:
    """The official atomic files in `folder`: verify's `.inter`, then an `.item` with the attribute field."""
    write_atomic(splits, len(attributes) + 1, folder)
    write_text(folder / f"{DATASET_NAME}.item", item_file(attributes))


# -- official side ----------------------------------------------------------------------------------
def overlay(
    model_config: dict[str, Any], train_config: TrainConfig, data_path: Path, max_len: int, seed: int, work: Path
) -> dict[str, Any]:
    """The official config keys that replace the Amazon_Beauty values: data, attribute field, sizes, budget."""
    values = {key: model_config[option] for option, key in OPTIONS.items()}
    values.update({key: [model_config[option]] for option, key in LIST_OPTIONS.items()})
    return {
        **values,
        "data_path": str(data_path),
        "checkpoint_dir": str(work / "saved"),
        "seed": seed,
        "use_gpu": False,
        "show_progress": False,
        "state": "INFO",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", ATTRIBUTE_FIELD]},
        "RATING_FIELD": None,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        "selected_features": [ATTRIBUTE_FIELD],
        "MAX_ITEM_LIST_LENGTH": max_len,
        "train_batch_size": train_config.batch_size,
        "epochs": train_config.epochs,
        "stopping_step": train_config.patience,
        "eval_step": 1,
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
    }


def official_command(python: str, checkout: Path, overlay_file: Path) -> list[str]:
    """The official run script with its Beauty config and the overlay (later files override earlier ones)."""
    return [
        python,
        str(checkout / "run_recbole.py"),
        f"--model={OFFICIAL_MODEL}",
        f"--dataset={DATASET_NAME}",
        f"--config_files={checkout / OFFICIAL_CONFIG} {overlay_file}",
    ]


def parse_log(text: str, batches_per_epoch: int) -> tuple[SideRun, dict[str, int]]:
    """The official log as a `SideRun` (loss: the logged per-epoch sum / batches) and its dataset counts."""
    run, counts = SideRun(seed=-1), {}
    epoch = -1
    for line in ANSI.sub("", text).splitlines():
        if match := TRAIN_LINE.search(line):
            if int(match[1]) != len(run.loss):
                raise TedbenchError(f"official log: epoch {match[1]} follows {len(run.loss)} training epochs")
            run.loss.append(float(match[2]) / batches_per_epoch)
        elif match := VALID_LINE.search(line):
            epoch = int(match[1])
            run.valid.append(float(match[2]))
        elif BEST_LINE.search(line):
            run.best_epoch = epoch
        elif match := TEST_LINE.search(line):
            run.test = {name.lower(): float(value) for name, value in METRIC_PAIR.findall(match[1])}
        elif match := COUNT_LINE.search(line):
            counts[match[1]] = int(match[2])
        elif match := SEED_LINE.search(line):
            run.seed = int(match[1])
    if not run.test:
        raise TedbenchError("official log: no `test result` line (the run did not finish)")
    if len(run.valid) != len(run.loss):
        raise TedbenchError(
            f"official log: {len(run.loss)} training epochs but {len(run.valid)} evaluations (eval_step must be 1)"
        )
    return run, counts


def latest_log(work: Path) -> str | None:
    logs = sorted((work / "log").glob(f"{OFFICIAL_MODEL}-*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text() if logs else None


def run_official(
    command: list[str], work: Path, overlay_file: Path, settings: str, batches_per_epoch: int
) -> tuple[SideRun, dict[str, int]]:
    """Write the overlay, run the official script in `work` (single-threaded) and parse the log it writes to
    `work/log/`. A finished run of the same overlay there is parsed again instead (as tedbench's `train`
    returns a finished run of the same settings)."""
    log = latest_log(work)
    finished = log is not None and TEST_LINE.search(ANSI.sub("", log)) is not None
    if not (finished and overlay_file.exists() and overlay_file.read_text() == settings):
        write_text(overlay_file, settings)
        with open(work / "official.out", "w") as out:
            code = subprocess.run(
                command, check=False, cwd=work, env={**os.environ, **OFFICIAL_ENV}, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        if code:
            raise TedbenchError(f"the official run failed (exit {code}); see {work / 'official.out'}")
        log = latest_log(work)
    if log is None:
        raise TedbenchError(f"the official run wrote no log under {work / 'log'}")
    return parse_log(log, batches_per_epoch)


def check_counts(counts: dict[str, int], users: int, items: int, inters: int) -> None:
    """The official dataset's users, items (both with padding) and interactions equal the exported ones."""
    expected = {"users": users + 1, "items": items + 1, "inters": inters}
    if counts != expected:
        raise TedbenchError(f"the official code loaded {counts}, tedbench exported {expected}")


OFFICIAL = ReportSide("official", "the official DIF-SR code")
LOCAL_PATHS = ("data_path", "checkpoint_dir")  # left out of the report's overlay: they are in the commands


# -- both sides -------------------------------------------------------------------------------------
DIFFERENCES = (
    (
        "attribute stream: official = a learned embedding of the item's genres (sum-pooled, `attribute_hidden_size`); "
        "tedbench = the item's text (minilm vectors through TedRec's text adapter, same width); the attribute "
        "predictor is trained on the same multi-hot genre labels on both sides (official drops column 0, tedbench "
        "has no column for it: the same mean)"
    ),
    (
        "framework: the official code is RecBole 1.0.0 (patched) under numpy 1.23 / pandas 1.5 / torch 2.13 CPU, "
        "not its pinned torch 1.8.1; random streams (initialisation, dropout, batch order) differ between sides"
    ),
    (
        "official Amazon_Beauty values replaced by the overlay: data (ours, no 5-core re-filter after the user "
        "subsample), sizes/dropouts/learning rate (tedbench's, listed above), eval every epoch on NDCG@10 with "
        "topk [10, 20] (official: every 2 epochs on Recall@20), the epoch cap and patience below"
    ),
    (
        "best epoch: the official RecBole 1.0.0 keeps the earlier epoch on a tie of the valid score (`>`); tedbench "
        "follows RecBole 1.2.x (`>=` on the 4-decimal value: the later epoch)"
    ),
    (
        "loss: the official log prints each epoch's sum of batch losses (4 decimals); it is divided by the number "
        "of batches to compare with tedbench's per-batch mean"
    ),
)


def verify_difsr(
    *,
    checkout: Path,
    python: str,
    dataset: str,
    data_root: Path,
    overrides: dict[str, Any],
    train_config: TrainConfig,
    seeds: list[int],
    device: str,
    work: Path,
    out: Path,
    command: str,
) -> dict[str, Any]:
    """Both sides for every seed (official run folder and tedbench's under `work/seedS/`, the exported data
    shared in `work/official-data`), then the side-by-side report."""
    entry = get_model(MODEL)
    train_config = replace(train_config, seed=seeds[0], max_steps_per_epoch=None)
    model_config, train_config = resolve_configs(entry, overrides, train_config)
    attributes = load_sequences(processed_dir(data_root, dataset)).item_attributes
    if attributes is None:
        raise TedbenchError(
            f"--dataset {dataset} has no item attributes: the official DIF-SR needs one "
            "categorical attribute stream (ml-1m has genres)"
        )
    splits, info, _ = load_dataset(data_root, dataset, None, needs_text=False, users=train_config.user_subsample)
    work.mkdir(parents=True, exist_ok=True)
    data_path = work / "official-data"
    export(splits, attributes, data_path / DATASET_NAME)
    n_inters = len(splits.test) + int(splits.test.target_pos.sum() - splits.valid.user_start.sum())
    batches = math.ceil(len(splits.train) / train_config.batch_size)
    ours, theirs, officials = [], [], []
    for seed in seeds:
        folder = work / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        overlay_file = folder / "overlay.yaml"
        settings = overlay(model_config, train_config, data_path, splits.max_len, seed, folder)
        official = official_command(python, checkout, overlay_file)
        run, counts = run_official(official, folder, overlay_file, yaml.safe_dump(settings, sort_keys=False), batches)
        check_counts(counts, len(splits.test), info.n_items - 1, n_inters)
        theirs.append(run)
        officials.append((official, folder, settings))
        seeded = replace(train_config, seed=seed)
        ours.append(run_tedbench(MODEL, dataset, data_root, overrides, seeded, seed, device, folder / "tedbench"))
    official, folder, settings = officials[0]
    header = {
        "model": MODEL,
        "dataset": dataset,
        "reference": f"the official DIF-SR code (AIM-SE/DIF-SR@{checkout_commit(checkout)[:7]}, its own patched "
        "RecBole 1.0.0), not RecBole 1.2.1",
        "official checkout": f"`git clone https://github.com/AIM-SE/DIF-SR {checkout} && "
        f"git -C {checkout} checkout {checkout_commit(checkout)}` (kept outside the repository)",
        "command": f"`{command}` (exports the data, runs the official command, then tedbench)",
        "official command": f"`{' '.join(f'{k}={v}' for k, v in OFFICIAL_ENV.items())} {shlex.join(official)}` "
        f"run in `{folder}` (seed {seeds[0]}; each seed S in `{work}/seedS` with its own overlay)",
        "official overlay": f"`{json.dumps({k: v for k, v in settings.items() if k not in LOCAL_PATHS})}`",
        "export": f"`{data_path / DATASET_NAME}/{DATASET_NAME}.inter` (user, item, position as timestamp) and "
        f"`.item` (every item id, `{ATTRIBUTE_FIELD}:token_seq`); the official log's counts "
        f"{counts} match the export",
        "seeds": ", ".join(map(str, seeds)) + " (each on both sides)",
        "users": len(splits.test),
        "items": info.n_items - 1,
        "training rows": len(splits.train),
        "model options": json.dumps({k: model_config[k] for k in (*OPTIONS, *LIST_OPTIONS)}, sort_keys=True),
        "training": f"Adam lr {train_config.learning_rate}, batch {train_config.batch_size}, up to "
        f"{train_config.epochs} epochs (capped for CPU time), patience {train_config.patience}, "
        f"whole epochs, fixed subsample of {train_config.user_subsample} users",
        "device": f"{device}, one thread per side",
        **{f"difference {k}": text for k, text in enumerate(DIFFERENCES, start=1)},
        f"difference {len(DIFFERENCES) + 1}": "budget: reduced for a shared CPU, not the paper's setup (sizes above, "
        f"{train_config.user_subsample} users, batch {train_config.batch_size}, at most {train_config.epochs} epochs); "
        f"one test hit moves Recall@K by 1/{len(splits.test)}, so the test metrics vary widely between seeds",
    }
    stem = f"{dataset}.{MODEL}.official-u{train_config.user_subsample}"
    result = write_report(out, stem, header, ours, theirs, OFFICIAL)
    return {**result, "tedbench": [run.test for run in ours], "official": [run.test for run in theirs]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.fidelity.difsr", description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="a checkout of AIM-SE/DIF-SR")
    parser.add_argument("--python", required=True, help="the interpreter that runs the official code")
    parser.add_argument("--dataset", default="ml-1m", help="a prepared dataset with item attributes")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("TEDBENCH_DATA", "data")))
    parser.add_argument("--users", type=int, required=True, help="fixed seeded user subsample")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--patience", type=int, default=TrainConfig.patience)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per side: --seed, --seed + 1, ...")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=argtypes.assignment,
        metavar="KEY=VALUE",
        help="a DIF-SR option (VALUE read as JSON, else text)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, required=True, help="run folders of both sides")
    parser.add_argument("--out", type=Path, default=layout.FIDELITY_DIR)
    args = parser.parse_args(argv)
    train_config = TrainConfig(
        epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, user_subsample=args.users
    )
    try:
        result = verify_difsr(
            checkout=args.checkout.resolve(),
            python=os.path.abspath(args.python)
            if os.sep in args.python
            else args.python,  # no symlinks followed: a venv
            dataset=args.dataset,
            data_root=args.data_root,
            overrides=dict(args.set),
            train_config=train_config,
            seeds=[args.seed + i for i in range(args.seeds)],
            device=args.device,
            work=args.work.resolve(),
            out=args.out,
            command=shlex.join(["python", "-m", "benchmark.fidelity.difsr", *(argv or sys.argv[1:])]),
        )
    except TedbenchError as exc:
        sys.exit(f"verify_difsr: error: {exc}")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Side-by-side runs against official code that is a standalone script with its own data format and trainer.

FMLP-Rec (`Woeee/FMLP-Rec`) and DLFS-Rec (`zxiang30/DLFS-Rec`) are S3-Rec-style repositories: a `main.py` that
reads one file per dataset, trains with its own loop and logs one Python dict per epoch. Here tedbench's
processed sequences (same users in the same order, same item ids, the last two items of each user held out as
valid and test target) are exported into that format, the official `main.py` runs as a subprocess with the
exact command line recorded, its stdout is parsed into `SideRun`s, tedbench trains the model's `official`
preset with the same sizes, learning rate, batch size, maximum length and stopping budget, and
`benchmark.fidelity.verify.write_report` writes the side-by-side table. Every protocol difference that remains is listed
in the report's header (`OfficialCode.differences`).

The official checkout is never imported by tedbench and never copied into it: `--checkout` points at a
clone outside the project (the tests read its files only when `TEDBENCH_FMLP_CHECKOUT` /
`TEDBENCH_DLFS_CHECKOUT` name one).

    python -m benchmark.fidelity.standalone --model FMLP-Rec --dataset OR-sample --checkout ../official/fmlp-rec
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import layout
from benchmark.data.splits import Splits
from benchmark.engine.run import load_dataset, resolve_configs
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.reference import checkout_commit
from benchmark.fidelity.verify import ReportSide, SideRun, run_tedbench, write_report
from benchmark.fsutil import atomic_path, write_text
from benchmark.registry import get_model

# Both repositories accept only their own dataset names (FMLP-Rec utils.py:17 `sequential_data_list`; DLFS-Rec
# reads `{data_dir}{data_name}_all_multi_word.dat`): the export is always named like their first one.
OFFICIAL_DATA_NAME = "Beauty"
SAMPLED_NEGATIVES = 99  # the `NAME_sample.txt` file both loaders require (unused under --full_sort)
CONTEXT_DIM = 6  # DLFS-Rec's per-interaction time context (year, month, day, weekday, day of year, week)
# the official full-sort log keys -> tedbench's metric names (one target per user: HIT@k = Recall@k)
LOG_METRICS = {"HIT@10": "recall@10", "NDCG@10": "ndcg@10", "HIT@20": "recall@20", "NDCG@20": "ndcg@20"}
BEST_SAVED = "Validation score increased"  # utils.EarlyStopping.save_checkpoint's message (both repositories)
TEST_MARKER = "---------------Sample 99 results---------------"  # main.py, before the test of the best model


# -- export -------------------------------------------------------------------------------------------
def user_sequences(splits: Splits) -> list[list[int]]:
    """Each user's whole sequence (training part, valid target, test target), users in tedbench's order."""
    items = splits.items.numpy()
    return [
        items[start : last + 1].tolist()
        for start, last in zip(splits.valid.user_start.tolist(), splits.test.target_pos.tolist())
    ]


def sampled_negatives(sequences: list[list[int]], n_items: int, seed: int) -> list[list[int]]:
    """Per user `SAMPLED_NEGATIVES` distinct ids in 1..n_items−1 absent from the user's sequence (seeded)."""
    rng = np.random.default_rng(seed)
    result = []
    for sequence in sequences:
        absent = np.setdiff1d(np.arange(1, n_items), sequence)
        if len(absent) < SAMPLED_NEGATIVES:
            raise TedbenchError(
                f"a user touches {n_items - 1 - len(absent)} of {n_items - 1} items: fewer than "
                f"{SAMPLED_NEGATIVES} are left for the official sampled-negative file"
            )
        result.append(sorted(rng.choice(absent, SAMPLED_NEGATIVES, replace=False).tolist()))
    return result


def id_lines(rows: list[list[int]]) -> str:
    """`user id id ...` per row, users numbered from 1 (the loaders read the ids after the first space)."""
    return "".join(f"{user} {' '.join(map(str, row))}\n" for user, row in enumerate(rows, start=1))


def export_fmlprec(
    sequences: list[list[int]], item_text: np.ndarray | None, n_items: int, folder: Path, seed: int
) -> None:
    """`folder/Beauty.txt` (one line per user) and `Beauty_sample.txt` (FMLP-Rec utils.get_user_seqs_and_sample)."""
    write_text(folder / f"{OFFICIAL_DATA_NAME}.txt", id_lines(sequences))
    write_text(folder / f"{OFFICIAL_DATA_NAME}_sample.txt", id_lines(sampled_negatives(sequences, n_items, seed)))


def export_dlfsrec(
    sequences: list[list[int]], item_text: np.ndarray | None, n_items: int, folder: Path, seed: int
) -> None:
    """`folder/Beauty_all_multi_word.dat` (DLFS-Rec utils.get_data_dic) and `Beauty_sample.txt`.

    Interactions carry a zero time context (the processed data has no timestamps). `items_feat` holds the item
    text matrix itself (row 0 = padding = zeros), which `DLFSREC_LAUNCHER` hands to the model in place of
    utils.get_feats_vec's price/category/brand encoding; the category table is sized so that the official
    `feature_size = 6 + 1 + n_categories + n_brands − 2` is 6 + the text width.
    """
    if item_text is None or item_text.shape[0] != n_items:
        raise TedbenchError(f"DLFS-Rec's export needs the item text matrix with {n_items} rows")
    width = item_text.shape[1]
    data = {
        "user_seq_token": {
            user: [[item, [0.0] * CONTEXT_DIM] for item in sequence] for user, sequence in enumerate(sequences, start=1)
        },
        "items_feat": np.asarray(item_text, dtype=np.float32),
        "item2id": {"[PAD]": 0, **{f"item{i}": i for i in range(1, n_items)}},
        "user2id": {"[PAD]": 0, **{f"user{u}": u for u in range(1, len(sequences) + 1)}},
        "category2id": {"[PAD]": 0, **{f"text{i}": i for i in range(1, width)}},
        "brand2id": {"[PAD]": 0},
    }
    with atomic_path(folder / f"{OFFICIAL_DATA_NAME}_all_multi_word.dat") as staging:
        staging.write_bytes(pickle.dumps(data))
    write_text(folder / f"{OFFICIAL_DATA_NAME}_sample.txt", id_lines(sampled_negatives(sequences, n_items, seed)))


# -- the official side --------------------------------------------------------------------------------
# DLFS-Rec runs through `python -c`: utils.get_feats_vec becomes the identity on the exported text matrix, and
# on a machine without CUDA `Tensor.cuda` returns the tensor (trainers.py builds the full-sort candidates
# with an unconditional `.cuda()`); then main.py runs unchanged with the given arguments.
DLFSREC_SIDE_FEATURES = "utils.get_feats_vec = lambda feats, data: torch.as_tensor(feats, dtype=torch.float32)"
DLFSREC_LAUNCHER = (
    f"import runpy, sys, torch, utils; {DLFSREC_SIDE_FEATURES}; "
    "torch.cuda.is_available() or setattr(torch.Tensor, 'cuda', lambda self, *args, **kwargs: self); "
    "sys.argv = ['main.py'] + sys.argv[1:]; runpy.run_path('main.py', run_name='__main__')"
)

COMMON_DIFFERENCES = (
    (
        "training rows: official every prefix of each user's last ≤ 50 training items, the first with an empty input "
        "(datasets.py `seq[-(max_len + 2):-2]`); tedbench targets s_1..s_{n−3}, each with its whole prefix cut to 50"
    ),
    (
        "evaluation: both full ranking over every item with Recall(=HIT)/NDCG@10/20 for the one target; the official "
        "code removes the user's history (valid: training part, test: + valid item) from the ranking, tedbench "
        "(RecBole's sequential protocol) ranks history items too"
    ),
    (
        "selection: official valid NDCG@20 (strict improvement, stop after 10 epochs without one); tedbench valid "
        "NDCG@10 (rounded to 4 places, ≥ counts, patience 9 = stop after 10 misses)"
    ),
    (
        "loss columns are different objectives (official sampled pairwise loss, tedbench full-softmax CE): compare "
        "their shape, not their values"
    ),
    (
        f"the official loaders need `{OFFICIAL_DATA_NAME}_sample.txt` (99 sampled negatives per user): written, "
        "unused under --full_sort"
    ),
)


@dataclass(frozen=True)
class OfficialCode:
    """How one official repository is fed, started and read."""

    model: str  # tedbench's model name
    repository: str
    export: Callable[[list[list[int]], np.ndarray | None, int, Path, int], None]
    entry: tuple[str, ...]  # the interpreter's arguments before the flags: `main.py` or `-c LAUNCHER`
    flags: tuple[str, ...]  # the official preset's values, spelled out
    loss_key: str  # the per-epoch training loss in the official log
    batch_size: int
    differences: tuple[str, ...]


OFFICIAL_CODE = {
    "FMLP-Rec": OfficialCode(
        "FMLP-Rec",
        "Woeee/FMLP-Rec",
        export_fmlprec,
        ("main.py",),
        (
            "--hidden_size",
            "64",
            "--num_hidden_layers",
            "2",
            "--hidden_dropout_prob",
            "0.5",
            "--lr",
            "0.001",
            "--batch_size",
            "256",
            "--max_seq_length",
            "50",
            "--initializer_range",
            "0.02",
        ),
        "rec_loss",
        256,
        (
            (
                "loss: official BCE of the target against one negative drawn uniformly from the ids absent from "
                "the row (trainers.py cross_entropy); tedbench full-softmax CE over all ids"
            ),
            (
                "evaluation: official history items get score 0 (not −inf: items with negative scores still rank below "
                "them) and the padding id 0 stays a candidate"
            ),
            (
                "padding: official left padding, the last item always at position embedding 49, read-out at the last "
                "slot; tedbench right padding, the last item at position n−1, read-out there: the position embeddings "
                "and the circular filters see another alignment"
            ),
        )
        + COMMON_DIFFERENCES,
    ),
    "DLFS-Rec": OfficialCode(
        "DLFS-Rec",
        "zxiang30/DLFS-Rec",
        export_dlfsrec,
        ("-c", DLFSREC_LAUNCHER),
        (
            "--hidden_size",
            "128",
            "--attribute_hidden_size",
            "128",
            "--num_hidden_layers",
            "4",
            "--hidden_dropout_prob",
            "0.5",
            "--lr",
            "0.0001",
            "--train_batch_size",
            "256",
            "--eval_batch_size",
            "128",
            "--pvn_weight",
            "0.005",
            "--fusion_type",
            "add",
            "--max_seq_length",
            "50",
            "--initializer_range",
            "0.02",
        ),
        "rec_avg_loss",
        256,
        (
            (
                "loss: official −log σ(W2(u, neg) − W2(u, pos)) with one negative drawn uniformly from the ids absent "
                "from the row, + pvn (trainers.py bpr_optimization); tedbench full-softmax CE over all ids with "
                "logits −W2, + the same pvn term with its own uniform absent negative"
            ),
            (
                "side information: both sides feed the frozen MiniLM item text through the side Linears; the official "
                "input also has a 6-d time context, zero here (no timestamps), so its 6 extra input columns stay inert"
            ),
            (
                "launcher: `python -c` replaces utils.get_feats_vec by the identity on the exported text matrix and, "
                "without CUDA, makes Tensor.cuda the identity (trainers.py full-sort `.cuda()`); main.py runs unchanged"
            ),
            "evaluation: official history items and the padding id 0 get distance 1e24 (excluded)",
            (
                "padding: official left, tedbench right; without position embeddings and with circular filters the "
                "read-out is the same function of the sequence either way (dropout masks fall on other slots)"
            ),
        )
        + COMMON_DIFFERENCES,
    ),
}


def official_command(
    code: OfficialCode, data_dir: Path, out_dir: Path, seed: int, epochs: int, patience: int
) -> list[str]:
    """The official command line (run with the checkout as working directory)."""
    return [
        sys.executable,
        *code.entry,
        "--data_dir",
        f"{data_dir.resolve()}/",
        "--data_name",
        OFFICIAL_DATA_NAME,
        "--output_dir",
        f"{out_dir.resolve()}/",
        "--full_sort",
        "--no_cuda",
        "--seed",
        str(seed),
        "--epochs",
        str(epochs),
        "--patience",
        str(patience),
        *code.flags,
    ]


def parse_official_log(text: str, loss_key: str, seed: int) -> SideRun:
    """A SideRun from the official stdout: per-epoch training dicts (`epoch`), valid dicts (`Epoch`), the
    save messages of the early stopping (the best epoch) and, after `TEST_MARKER`, the test dict."""
    run, testing = SideRun(seed), False
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line == TEST_MARKER:
            testing = True
        elif line.startswith(BEST_SAVED):
            run.best_epoch = len(run.loss) - 1
        elif line.startswith("{") and line.endswith("}"):
            try:
                record = ast.literal_eval(line)
            except (ValueError, SyntaxError) as exc:
                raise TedbenchError(f"official log line {number}: not a Python dict ({exc})") from exc
            if "epoch" in record:
                run.loss.append(float(record[loss_key]))
            elif "Epoch" in record and testing:
                run.test = {ours: float(record[theirs]) for theirs, ours in LOG_METRICS.items()}
            elif "Epoch" in record:
                run.valid.append(float(record["NDCG@10"]))
    if not run.test or not run.loss or len(run.valid) != len(run.loss) or run.best_epoch < 0:
        raise TedbenchError(
            f"official log: {len(run.loss)} training and {len(run.valid)} valid epochs, "
            f"best epoch {run.best_epoch}, test {'found' if run.test else 'missing'}: "
            "not a finished full-sort run"
        )
    return run


def start_official(checkout: Path, command: list[str], log: Path) -> subprocess.Popen:
    """Start the official command in `checkout` on one thread; stdout goes to `log`, stderr to `log`.err."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(command, cwd=checkout, env=env, stdout=out, stderr=err)


def finish_official(code: OfficialCode, process: subprocess.Popen, log: Path, seed: int) -> SideRun:
    """Wait for the official run and parse its stdout."""
    if process.wait() != 0:
        tail = log.with_suffix(".err").read_text().strip().splitlines()[-1:] or ["(no stderr)"]
        raise TedbenchError(f"official {code.model} exited with {process.returncode}: {tail[0]}")
    return parse_official_log(log.read_text(), code.loss_key, seed)


def finished_official(code: OfficialCode, command: list[str], commit: str, log: Path, seed: int) -> SideRun | None:
    """The run `log` holds when the same command at the same commit finished there before, else None."""
    record = log.parent / "command.json"
    if not record.exists() or json.loads(record.read_text()) != {"command": command, "commit": commit}:
        return None
    return parse_official_log(log.read_text(), code.loss_key, seed)


# -- side by side -------------------------------------------------------------------------------------
def compare(
    model: str,
    dataset: str,
    *,
    data_root: Path,
    checkout: Path,
    seed: int,
    epochs: int,
    patience: int,
    out: Path,
    work: Path,
    command: str,
) -> dict:
    """Export, run the official code and tedbench's `official` preset once each, write the report under `out`."""
    if model not in OFFICIAL_CODE:
        raise TedbenchError(f"--model {model}: standalone official code is known for {', '.join(OFFICIAL_CODE)}")
    code, entry = OFFICIAL_CODE[model], get_model(model)
    commit = checkout_commit(checkout)
    overrides = {"preset": "official"}
    # official EarlyStopping stops after `patience` epochs without improvement; tedbench's after patience + 1
    base = TrainConfig(batch_size=code.batch_size, epochs=epochs, patience=patience - 1, seed=seed)
    model_config, train_config = resolve_configs(entry, overrides, base)
    splits, info, _ = load_dataset(data_root, dataset, None, needs_text=entry.needs_text)
    sequences = user_sequences(splits)
    text = None if info.item_text is None else info.item_text.numpy()
    data_dir, official_out = work / "official-data", work / f"official-seed{seed}"
    code.export(sequences, text, info.n_items, data_dir, seed)
    official_out.mkdir(parents=True, exist_ok=True)
    argv = official_command(code, data_dir, official_out, seed, epochs, patience)
    log = official_out / "stdout.log"
    theirs = finished_official(code, argv, commit, log, seed)
    process = None if theirs else start_official(checkout, argv, log)  # both sides train at once, a thread each
    try:
        ours = run_tedbench(
            model, dataset, data_root, overrides, train_config, seed, "cpu", work / f"tedbench-seed{seed}"
        )
    except BaseException:
        if process:
            process.kill()
        raise
    if process:
        theirs = finish_official(code, process, log, seed)
        write_text(official_out / "command.json", json.dumps({"command": argv, "commit": commit}))
    shown = ["python" if arg == sys.executable else arg for arg in argv]
    header = {
        "model": model,
        "dataset": dataset,
        "command": f"`{command}`",
        "official code": f"{code.repository}@{commit}",
        "official command": f"`cd CHECKOUT && OMP_NUM_THREADS=1 {shlex.join(shown)}`",
        "export": f"`{data_dir}` from tedbench's processed {dataset}: {len(sequences)} users in tedbench's order, "
        f"item ids unchanged ({info.n_items - 1} items), whole sequences (valid/test = the last two items)",
        "seed": f"{seed} on each side (each seeds its own generators)",
        "training rows": f"tedbench {len(splits.train)}, official {official_train_rows(sequences, splits.max_len)}",
        "tedbench run": (
            f"in-process `benchmark.fidelity.verify.run_tedbench` = `tedbench train --model {model} --dataset "
            f"{dataset} --set preset=official --batch-size {code.batch_size} --epochs {epochs} --seed "
            f"{seed} --device cpu` with patience {patience - 1} (the CLI has no patience flag)"
        ),
        "tedbench options": json.dumps(model_config, sort_keys=True),
        "training": f"Adam lr {train_config.learning_rate}, batch {train_config.batch_size}, max length "
        f"{splits.max_len}, up to {epochs} epochs, stop after {patience} epochs without improvement, "
        "CPU, one thread",
        **{f"difference {i}": line for i, line in enumerate(code.differences, start=1)},
    }
    reference = ReportSide("official", f"official {code.repository}")
    return write_report(out, f"{dataset}.{model}.official-code", header, [ours], [theirs], reference)


def official_train_rows(sequences: list[list[int]], max_len: int) -> int:
    """Rows of the official training set: one per item of each user's last ≤ max_len training items."""
    return sum(min(len(sequence) - 2, max_len) for sequence in sequences)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.fidelity.standalone", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, choices=sorted(OFFICIAL_CODE))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--checkout", required=True, type=Path, help="a clone of the official repository")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("TEDBENCH_DATA", "data")))
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--epochs", type=int, default=200, help="epoch cap on both sides (official default 200)")
    parser.add_argument("--patience", type=int, default=10, help="official epochs without improvement (default 10)")
    parser.add_argument("--out", type=Path, default=layout.FIDELITY_DIR)
    parser.add_argument(
        "--work", type=Path, help="exports, official outputs, tedbench runs (default: runs/official/DATASET/MODEL)"
    )
    args = parser.parse_args(argv)
    work = args.work or layout.official_scratch(args.dataset, args.model)
    command = "python -m benchmark.fidelity.standalone " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        result = compare(
            args.model,
            args.dataset,
            data_root=args.data_root,
            checkout=args.checkout,
            seed=args.seed,
            epochs=args.epochs,
            patience=args.patience,
            out=args.out,
            work=work,
            command=command,
        )
    except TedbenchError as exc:
        print(f"tedbench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

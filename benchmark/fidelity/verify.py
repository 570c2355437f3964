"""`tedbench verify --against recbole`: train tedbench's model and RecBole 1.2.1's on identical data and settings.

Data: tedbench's processed sequences (after the profile's user subsample) are written as a RecBole atomic
dataset: one `.inter` row per interaction with the position as timestamp, and a `.item` file listing every
item id, so that both sides score the same N ids (items no kept user touches included). RecBole then applies
its own sequential augmentation and leave-one-out split (`LS: valid_and_test`, order `TO`); before training,
its train/valid/test rows, mapped back to tedbench's ids, must equal tedbench's rows exactly.

Settings: the same model options, Adam learning rate, batch size, epoch budget, patience (RecBole's
`stopping_step`), selection metric (valid NDCG@10) and full-sort evaluation; RecBole's Trainer trains whole
epochs, so a profile's per-epoch step cap is dropped on both sides. Seeds s, s+1, ... seed each side in its own
way. Output: a side-by-side Markdown table and CSVs (per-epoch loss and valid NDCG@10 as mean ± std over seeds,
per-seed test metrics) and a verdict: the test NDCG@10 means differ by at most two standard errors.

`--against official --reference-code PATH` runs an official RecBole-based checkout instead of stock RecBole
(`benchmark.fidelity.reference` knows its files); its item text is written from tedbench's embeddings. Each finished
side and seed stores its result (`siderun.json`, and its best weights) in its run folder under `--work`; a rerun with
the same settings and data reuses it, other settings are refused. RecBole is imported only through the numpy 2 /
pandas 3 shims of `benchmark.recbole_compat`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.data.splits import Rows, Splits
from benchmark.engine.run import load_dataset, resolve_configs, train
from benchmark.engine.runstate import differing_keys, run_lock
from benchmark.engine.trainer import SELECTION_METRIC, TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.lockstep import lockstep, without_dropout, write_lockstep
from benchmark.fidelity.reference import Reference, resolve, write_text_features
from benchmark.fidelity.speed import speed, write_speed
from benchmark.fidelity.transplant import name_map, write_transplant
from benchmark.fidelity.transplant import transplant as run_transplant
from benchmark.fsutil import atomic_path, write_json, write_text
from benchmark.log import logger
from benchmark.metrics import DEFAULT_KS
from benchmark.model import DatasetInfo
from benchmark.recbole_compat import recbole_config
from benchmark.registry import get_model

METRICS = tuple(f"{name}@{k}" for k in DEFAULT_KS for name in ("recall", "ndcg"))
DATASET_NAME = "tedbench"


@dataclass
class SideRun:
    """One seed of one side: per-epoch mean training loss and valid NDCG@10, the best epoch, test metrics."""

    seed: int
    loss: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    best_epoch: int = -1
    test: dict[str, float] = field(default_factory=dict)


SIDE_RUN = "siderun.json"
BEST_WEIGHTS = "best-weights.pt"  # the reference side's best state dict (tedbench's is checkpoints/best.pt)


def stored_side_run(folder: Path, settings: dict[str, Any]) -> SideRun | None:
    """The side run `folder` finished with `settings`; None if it has none; other settings are refused."""
    path = folder / SIDE_RUN
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    changed = differing_keys(stored["settings"], json.loads(json.dumps(settings)))
    if changed:
        raise TedbenchError(
            f"{path}: finished with other settings ({', '.join(changed)}); "
            f"use another --work, or remove {folder} to recompute it"
        )
    return SideRun(**stored["run"])


def side_run(folder: Path, settings: dict[str, Any], compute, *, lock: bool = False) -> SideRun:
    """The stored run of `settings` in `folder`, else `compute()` stored there (after what it wrote itself).

    `lock`: compute while holding the folder's run lock, so a second verify of the same side is refused
    instead of training it again beside the first (tedbench's side takes the lock in its own trainer)."""
    run = stored_side_run(folder, settings)
    if run is None:
        with run_lock(folder) if lock else contextlib.nullcontext():
            run = stored_side_run(folder, settings)  # finished meanwhile by the lock's previous holder
            if run is None:
                run = compute()
                write_json(folder / SIDE_RUN, {"settings": settings, "run": asdict(run)})
    return run


def files_digest(folder: Path) -> str:
    """sha256 over the names and bytes of the files in `folder` (the data both sides read)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- data -------------------------------------------------------------------------------------------
def user_of(splits: Splits, rows: Rows) -> np.ndarray:
    """Each row's user index (users in the order of their sequences)."""
    return np.searchsorted(splits.valid.user_start.numpy(), rows.user_start.numpy())


def write_atomic(splits: Splits, n_items: int, folder: Path) -> None:
    """`folder/NAME.inter` (user, item, position as timestamp) and `folder/NAME.item` (every id 1..N−1)."""
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    items = splits.items.numpy()
    for user, (start, last) in enumerate(zip(splits.valid.user_start.tolist(), splits.test.target_pos.tolist())):
        lines.extend(f"{user}\t{item}\t{step}" for step, item in enumerate(items[start : last + 1].tolist()))
    write_text(folder / f"{DATASET_NAME}.inter", "\n".join(lines) + "\n")
    write_text(folder / f"{DATASET_NAME}.item", "item_id:token\n" + "".join(f"{i}\n" for i in range(1, n_items)))


def row_table(user: np.ndarray, seq: np.ndarray, length: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rows [user, length, target, seq...] sorted lexicographically (a canonical multiset of rows)."""
    table = np.column_stack([user, length, target, seq]).astype(np.int64)
    return table[np.lexsort(table.T[::-1])]


def check_same_rows(splits: Splits, recbole_splits: dict[str, Any]) -> None:
    """RecBole's augmented train/valid/test rows, mapped back to tedbench ids, equal tedbench's rows."""
    for name, data in recbole_splits.items():
        feat = data.inter_feat
        item_ids = np.array([0] + [int(t) for t in data.field2id_token["item_id"][1:]])
        user_ids = np.array([-1] + [int(t) for t in data.field2id_token["user_id"][1:]])
        seq = item_ids[feat["item_id_list"].numpy()]
        theirs = row_table(
            user_ids[feat["user_id"].numpy()], seq, feat["item_length"].numpy(), item_ids[feat["item_id"].numpy()]
        )
        rows = getattr(splits, name)
        ours_seq, ours_length, ours_target = (t.numpy() for t in splits.batch(rows))
        ours = row_table(user_of(splits, rows), ours_seq, ours_length, ours_target)
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            raise TedbenchError(f"RecBole's {name} rows differ from tedbench's ({len(theirs)} vs {len(ours)} rows)")


# -- reference side ---------------------------------------------------------------------------------
def write_reference_data(splits: Splits, info: DatasetInfo, reference: Reference, folder: Path) -> None:
    """The atomic dataset (`write_atomic`) and, for a reference that reads item text, `NAME.<suffix>`."""
    write_atomic(splits, info.n_items, folder)
    if reference.text_suffix:
        write_text_features(folder / f"{DATASET_NAME}.{reference.text_suffix}", info.item_text)


def reference_settings(
    reference: Reference,
    model_config: dict[str, Any],
    train_config: TrainConfig,
    data_path: Path,
    max_len: int,
    seed: int,
    device: torch.device,
    work: Path,
    text_dim: int | None = None,
) -> dict[str, Any]:
    """RecBole's config_dict for the same model options, data and training budget."""
    values = {key: model_config[key] for key in reference.options}
    if values.get("contrast") == "none":
        values["contrast"] = None  # the stock yaml: no contrastive term
    text = reference.text_settings(text_dim, model_config) if reference.text_settings else {}
    return {
        **values,
        **text,
        **reference.data_settings,
        "data_path": str(data_path),
        "checkpoint_dir": str(work),
        "seed": seed,
        "reproducibility": True,
        "use_gpu": device.type == "cuda",
        "gpu_id": str(device.index or 0) if device.type == "cuda" else "",
        "load_col": None,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        "MAX_ITEM_LIST_LENGTH": max_len,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "learner": "adam",
        "weight_decay": 0.0,
        "learning_rate": train_config.learning_rate,
        "train_batch_size": train_config.batch_size,
        "eval_batch_size": 4096,
        "epochs": train_config.epochs,
        "stopping_step": train_config.patience,
        "eval_step": 1,
        "metrics": ["Recall", "NDCG"],
        "topk": list(DEFAULT_KS),
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 4,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
    }


PATH_SETTINGS = ("data_path", "checkpoint_dir")  # where, not what: left out of a stored run's settings


def reference_data(reference: Reference, settings: dict[str, Any], splits: Splits):
    """(config, train, valid, test dataloaders) of the reference on the written data, its rows checked equal."""
    import recbole.trainer.trainer as recbole_trainer
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    recbole_trainer.get_tensorboard = lambda logger: _Inert()  # nothing written outside `work`
    config = recbole_config(reference.model_class, DATASET_NAME, settings, reference.config_files)
    init_seed(config["seed"], True)
    dataset = reference.dataset_class(config) if reference.dataset_class else create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    check_same_rows(splits, {"train": train_data.dataset, "valid": valid_data.dataset, "test": test_data.dataset})
    width = train_data.dataset.inter_feat["item_id_list"].shape[1]
    if width != splits.max_len:
        raise TedbenchError(f"{reference.label} pads sequences to {width} positions, tedbench to {splits.max_len}")
    return config, train_data, valid_data, test_data


def run_reference(reference: Reference, settings: dict[str, Any], splits: Splits, work: Path) -> SideRun:
    """Train the reference with RecBole's Trainer; its best weights go to `work/BEST_WEIGHTS`."""
    import recbole.trainer.trainer as recbole_trainer
    from recbole.utils import init_seed

    config, train_data, valid_data, test_data = reference_data(reference, settings, splits)
    init_seed(config["seed"], True)
    net = reference.model_class(config, train_data.dataset).to(config["device"])
    run = SideRun(config["seed"])

    class RecordingTrainer(recbole_trainer.Trainer):
        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            total = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
            run.loss.append(float(total) / len(train_data))
            return total

        def _valid_epoch(self, valid_data, show_progress=False):
            score, result = super()._valid_epoch(valid_data, show_progress)
            run.valid.append(float(score))
            logger.info(
                f"{reference.label} seed {run.seed} epoch {len(run.valid) - 1}: "
                f"loss {run.loss[-1]:.4f}, valid {SELECTION_METRIC} {score:.4f}"
            )
            return score, result

        def _save_checkpoint(self, epoch, verbose=True, **kwargs):
            # RecBole pickles the best model (and its config, which names an official checkout's class by a
            # module path pickle cannot import) here; verify keeps the weights instead and saves them itself
            best["state_dict"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            best["epoch"] = epoch

    best: dict[str, Any] = {}
    trainer = RecordingTrainer(config, net)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    net.load_state_dict(best["state_dict"])
    with atomic_path(work / BEST_WEIGHTS) as tmp:
        torch.save({k: v.cpu() for k, v in best["state_dict"].items()}, tmp)
    run.best_epoch = int(best["epoch"])
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    run.test = {key.lower(): float(value) for key, value in result.items()}
    return run


class _Inert:
    """A SummaryWriter that records nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


# -- tedbench side ----------------------------------------------------------------------------------
def run_tedbench(
    model: str,
    dataset: str,
    data_root: Path,
    overrides: dict[str, Any],
    train_config: TrainConfig,
    seed: int,
    device: str,
    out: Path,
    encoder: str | None = None,
) -> SideRun:
    metrics = train(
        model,
        dataset,
        data_root=data_root,
        out=out,
        device=device,
        overrides=overrides,
        encoder=encoder,
        train_config=replace(train_config, seed=seed),
        progress=False,
        tag="verify",
    )
    return finished_side_run(out, seed, metrics)


def finished_side_run(folder: Path, seed: int, metrics: dict[str, Any]) -> SideRun:
    """A finished tedbench run folder as a side: its fine-tuning epochs' loss and valid NDCG@10, `metrics`."""
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    log = [record for record in log if record.get("stage") != "pretrain"]
    return SideRun(
        seed,
        [r["loss_mean"] for r in log],
        [r["valid"][SELECTION_METRIC] for r in log],
        int(metrics["best_epoch"]),
        dict(metrics["test"]),
    )


# -- comparison -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportSide:
    """How a report names a side: `key` its CSV columns and rows, `label` its Markdown columns
    (a `benchmark.fidelity.reference.Reference` has both too)."""

    key: str
    label: str


RECBOLE = ReportSide("recbole", "RecBole 1.2.1")
TEDBENCH = ReportSide("tedbench", "tedbench")


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def verdict(ours: list[SideRun], theirs: list[SideRun]) -> tuple[str, float, float]:
    """(verdict, test NDCG@10 difference tedbench − reference, its standard error)."""
    a = [r.test["ndcg@10"] for r in ours]
    b = [r.test["ndcg@10"] for r in theirs]
    difference = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return "undetermined (at least 2 seeds per side are needed for a standard error)", difference, math.nan
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    if abs(difference) <= 2 * se:
        return "PASS: within two standard errors", difference, se
    return "FAIL: more than two standard errors apart", difference, se


def epoch_rows(
    ours: list[SideRun],
    theirs: list[SideRun],
    reference: ReportSide | Reference = RECBOLE,
    own: ReportSide = TEDBENCH,
) -> list[dict[str, Any]]:
    """Per epoch and side: mean and std of the loss and valid NDCG@10 over the seeds that ran the epoch."""
    rows = []
    for epoch in range(max(len(r.loss) for r in ours + theirs)):
        row: dict[str, Any] = {"epoch": epoch}
        for side, runs in ((own.key, ours), (reference.key, theirs)):
            running = [r for r in runs if len(r.loss) > epoch]
            for name, attr in (("loss", "loss"), ("valid_ndcg@10", "valid")):
                values = [getattr(r, attr)[epoch] for r in running]
                row[f"{side}_{name}_mean"], row[f"{side}_{name}_std"] = mean_std(values) if values else (math.nan,) * 2
            row[f"{side}_seeds"] = len(running)
        rows.append(row)
    return rows


def seed_rows(
    ours: list[SideRun],
    theirs: list[SideRun],
    reference: ReportSide | Reference = RECBOLE,
    own: ReportSide = TEDBENCH,
) -> list[dict[str, Any]]:
    return [
        {"side": side, "seed": r.seed, "best_epoch": r.best_epoch, **{m: r.test.get(m, math.nan) for m in METRICS}}
        for side, runs in ((own.key, ours), (reference.key, theirs))
        for r in runs
    ]


def cell(mean: float, std: float, digits: int = 4) -> str:
    """`mean ± std` (just the mean without a std, – without a mean)."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_csv(rows: list[dict[str, Any]]) -> str:
    def text(value: Any) -> str:
        return "" if isinstance(value, float) and math.isnan(value) else str(value)

    return "\n".join([",".join(rows[0])] + [",".join(text(v) for v in row.values()) for row in rows]) + "\n"


def markdown(
    stem: str,
    header: dict[str, Any],
    ours: list[SideRun],
    theirs: list[SideRun],
    reference: ReportSide | Reference = RECBOLE,
    own: ReportSide = TEDBENCH,
    title: str = "Fidelity",
) -> str:
    result, difference, se = verdict(ours, theirs)
    spread = "" if math.isnan(se) else f", standard error {se:.4f}"
    lines = [f"# {title}: {header['model']} on {header['dataset']}, {own.label} vs {reference.label}", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        (
            f"**Verdict: {result}.** Test NDCG@10 difference ({own.label} − {reference.label}) "
            f"{difference:+.4f}{spread}."
        ),
        "",
        "## Test metrics (best valid NDCG@10 checkpoint; mean ± std over seeds)",
        "",
        f"| metric | {own.label} | {reference.label} |",
        "|---|---|---|",
    ]
    tests = seed_rows(ours, theirs, reference, own)
    for metric in ("best_epoch",) + METRICS:
        digits = 1 if metric == "best_epoch" else 4
        cells = [
            cell(*mean_std([row[metric] for row in tests if row["side"] == side]), digits)
            for side in (own.key, reference.key)
        ]
        lines.append(f"| {metric} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "## Per epoch (mean ± std over the seeds still training)",
        "",
        (
            f"| epoch | loss {own.label} | loss {reference.label} | valid NDCG@10 {own.label} "
            f"| valid NDCG@10 {reference.label} | seeds |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for row in epoch_rows(ours, theirs, reference, own):
        cells = [
            cell(row[f"{side}_{key}_mean"], row[f"{side}_{key}_std"])
            for key in ("loss", "valid_ndcg@10")
            for side in (own.key, reference.key)
        ]
        seeds = f"{row[f'{own.key}_seeds']} / {row[f'{reference.key}_seeds']}"
        lines.append(f"| {row['epoch']} | {' | '.join(cells)} | {seeds} |")
    lines += ["", f"Per-seed rows: `{stem}.test.csv`; per-epoch rows: `{stem}.epochs.csv`.", ""]
    return "\n".join(lines)


def write_report(
    out: Path,
    stem: str,
    header: dict[str, Any],
    ours: list[SideRun],
    theirs: list[SideRun],
    reference: ReportSide | Reference = RECBOLE,
    own: ReportSide = TEDBENCH,
    title: str = "Fidelity",
) -> dict[str, Any]:
    """`out/STEM.md`, `STEM.epochs.csv` and `STEM.test.csv`; returns the verdict."""
    write_text(out / f"{stem}.epochs.csv", to_csv(epoch_rows(ours, theirs, reference, own)))
    write_text(out / f"{stem}.test.csv", to_csv(seed_rows(ours, theirs, reference, own)))
    write_text(out / f"{stem}.md", markdown(stem, header, ours, theirs, reference, own, title))
    result, difference, se = verdict(ours, theirs)
    return {
        "verdict": result,
        "ndcg@10_difference": difference,
        "standard_error": None if math.isnan(se) else se,
        "markdown": str(out / f"{stem}.md"),
    }


@dataclass
class Setup:
    """What both sides of one verify share: resolved options, data, the reference and where things go."""

    model: str
    dataset: str
    data_root: Path
    overrides: dict[str, Any]
    model_config: dict[str, Any]
    train_config: TrainConfig
    splits: Splits
    info: DatasetInfo
    reference: Reference
    data_path: Path
    device: torch.device
    work: Path
    encoder: str | None = None  # item-text encoder (None: the default) of a reference that reads text

    def settings(self, seed: int) -> dict[str, Any]:
        return reference_settings(
            self.reference,
            self.model_config,
            replace(self.train_config, seed=seed),
            self.data_path,
            self.splits.max_len,
            seed,
            self.device,
            self.work / f"{self.reference.key}-seed{seed}",
            None if self.info.item_text is None else self.info.item_text.size(1),
        )

    def identity(self, seed: int) -> dict[str, Any]:
        """What a stored side run of `seed` must match: model, data, budget, device (and the reference's code)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "data": files_digest(self.data_path / DATASET_NAME),
            "train_config": asdict(replace(self.train_config, seed=seed)),
            "device": str(self.device),
        }

    def ours(self, seed: int) -> SideRun:
        folder = self.work / f"tedbench-seed{seed}"
        settings = {**self.identity(seed), "side": "tedbench", "model_config": self.model_config}
        return side_run(
            folder,
            settings,
            lambda: run_tedbench(
                self.model,
                self.dataset,
                self.data_root,
                self.overrides,
                self.train_config,
                seed,
                str(self.device),
                folder,
                self.encoder,
            ),
        )

    def tedbench_weights(self, seed: int) -> dict[str, torch.Tensor]:
        """The best weights tedbench's run of `seed` kept."""
        return torch.load(
            self.work / f"tedbench-seed{seed}" / "checkpoints" / "best.pt", map_location="cpu", weights_only=True
        )["model"]

    def reference_weights(self, seed: int) -> dict[str, torch.Tensor]:
        """The best weights the reference's run of `seed` kept."""
        return torch.load(
            self.work / f"{self.reference.key}-seed{seed}" / BEST_WEIGHTS, map_location="cpu", weights_only=True
        )

    def theirs(self, seed: int) -> SideRun:
        folder = self.work / f"{self.reference.key}-seed{seed}"
        config = {k: v for k, v in self.settings(seed).items() if k not in PATH_SETTINGS}
        settings = {
            **self.identity(seed),
            "side": self.reference.key,
            "reference": self.reference.identity,
            "reference_settings": config,
        }
        return side_run(
            folder,
            settings,
            lambda: run_reference(self.reference, self.settings(seed), self.splits, folder),
            lock=True,
        )


def prepare(
    model: str,
    dataset: str,
    *,
    data_root: Path,
    overrides: dict[str, Any],
    train_config: TrainConfig,
    against: str,
    reference_code: Path | None,
    device: str,
    work: Path,
    encoder: str | None = None,
) -> Setup:
    """Resolve both sides' settings, load the data and write it for the reference under `work/recbole-data`."""
    entry = get_model(model)
    train_config = replace(train_config, max_steps_per_epoch=None)  # RecBole trains whole epochs
    model_config, train_config = resolve_configs(entry, overrides, train_config)
    reference = resolve(against, model, model_config, reference_code)
    splits, info, _ = load_dataset(
        data_root, dataset, encoder, needs_text=reference.text_suffix is not None, users=train_config.user_subsample
    )
    data_path = work / "recbole-data"
    write_reference_data(splits, info, reference, data_path / DATASET_NAME)
    return Setup(
        model,
        dataset,
        Path(data_root),
        overrides,
        model_config,
        train_config,
        splits,
        info,
        reference,
        data_path,
        torch.device(device),
        work,
        encoder,
    )


def verify(
    model: str,
    dataset: str,
    *,
    data_root: Path,
    overrides: dict[str, Any],
    train_config: TrainConfig,
    seeds: list[int],
    profile: str | None,
    device: str,
    out: Path,
    work: Path,
    command: str,
    against: str = "recbole",
    reference_code: Path | None = None,
    transplant: bool = False,
    lockstep_steps: int | None = None,
    speed_steps: int | None = None,
    encoder: str | None = None,
) -> dict[str, Any]:
    """Train both sides for every seed (reusing finished ones) and write the side-by-side report under `out`
    (with `transplant`: the weight-transplant table of the same runs instead; with `lockstep_steps`: no full
    runs, the lockstep table of that many steps per seed; with `speed_steps`: no full runs, each side's seconds per
    training step over that many steps per seed)."""
    setup = prepare(
        model,
        dataset,
        data_root=data_root,
        overrides=overrides,
        train_config=train_config,
        against=against,
        reference_code=reference_code,
        device=device,
        work=work,
        encoder=encoder,
    )
    if transplant or lockstep_steps or speed_steps:
        name_map(model)  # refused before anything trains
    reference, splits, train_config = setup.reference, setup.splits, setup.train_config
    header = {
        "model": model,
        "dataset": dataset,
        "command": f"`{command}`",
        "reference": reference.label,
        "profile": profile or "none (the paper's budget)",
        "seeds": ", ".join(map(str, seeds)),
        "users": len(splits.test),
        "items": setup.info.n_items - 1,
        "training rows": len(splits.train),
        "model options": json.dumps({k: setup.model_config[k] for k in reference.options}, sort_keys=True),
        "training": f"Adam lr {train_config.learning_rate}, batch {train_config.batch_size}, up to "
        f"{train_config.epochs} epochs, patience {train_config.patience}, whole epochs",
        "device": str(setup.device),
    }
    stem = f"{dataset}.{model}.{profile or 'paper'}"
    if reference.key != "recbole":
        stem += f".{reference.key}"
    if lockstep_steps:
        batch = train_config.batch_size
        header["training"] = f"Adam lr {train_config.learning_rate}, batch {batch}, {lockstep_steps} steps in lockstep"
        header["model options"] = json.dumps(
            {k: without_dropout(setup.model_config)[k] for k in reference.options}, sort_keys=True
        )
        results = [lockstep(setup, seed, lockstep_steps) for seed in seeds]
        return write_lockstep(Path(out), stem, header, results, reference.label)
    if speed_steps:
        header["training"] = f"Adam lr {train_config.learning_rate}, batch {train_config.batch_size}"
        results = [speed(setup, seed, speed_steps) for seed in seeds]
        return write_speed(Path(out), stem, header, results, reference.label)
    ours, theirs = [], []
    for seed in seeds:
        ours.append(setup.ours(seed))
        theirs.append(setup.theirs(seed))
    if transplant:
        rows = [
            row
            for seed in seeds
            for row in run_transplant(setup, seed, setup.tedbench_weights(seed), setup.reference_weights(seed))
        ]
        return write_transplant(Path(out), stem, header, rows, reference.label)
    return write_report(Path(out), stem, header, ours, theirs, reference)

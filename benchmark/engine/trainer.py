"""The training loop: device-resident batches, RecBole's early stopping, resumable checkpoints.

Early stopping follows RecBole exactly: after each epoch the valid NDCG@10 is rounded to four
decimals; a value >= the best so far is an improvement (and re-saves the best checkpoint); training
stops once `patience` + 1 consecutive epochs fail to improve (RecBole's `cur_step > stopping_step`).
The best checkpoint is then evaluated on valid and test.
"""

from __future__ import annotations

import io
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.data.splits import Splits
from benchmark.engine.evaluate import DEFAULT_MEMORY_CAP, full_sort_ranks
from benchmark.engine.runstate import USERS
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import atomic_path, write_json, write_text
from benchmark.log import logger
from benchmark.metrics import summarize
from benchmark.model import Batch, SequentialModel, TrainingRows

SELECTION_METRIC = "ndcg@10"


@dataclass
class TrainConfig:
    learning_rate: float = 1e-3
    batch_size: int = 2048
    epochs: int = 300
    patience: int = 10
    seed: int = 2020
    amp: str = "none"  # "none" | "bf16"
    tf32: bool = False
    compile: bool = False
    memory_cap: int = DEFAULT_MEMORY_CAP
    max_steps_per_epoch: int | None = None  # for quick checks; None = the whole training split
    user_subsample: int | None = None  # a fixed seeded subsample of users (reduced profiles); None = all


@dataclass
class EarlyStopping:
    """RecBole's rule: rounded value >= best is an improvement; stop after patience + 1 misses."""

    patience: int
    best: float = float("-inf")
    bad_epochs: int = 0

    def update(self, value: float) -> bool:
        value = round(value, 4)
        if value >= self.best:
            self.best, self.bad_epochs = value, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs > self.patience


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Every RNG state, as types that `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Checkpoint atomically. Serialised in memory first: torch's own file writer reports a full disk as a
    RuntimeError without a path, a plain write as an OSError naming the file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_log(path: Path) -> list[dict[str, Any]]:
    """The epoch records of log.jsonl; a torn last line is dropped with a warning, any other bad line is an error."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                raise ValueError("not an epoch record")
        except ValueError as exc:
            if number == len(lines):
                logger.warning(f"{path}:{number}: dropping a torn last line")
                break
            raise TedbenchError(f"{path}:{number}: not an epoch record ({exc}); start again with --overwrite") from exc
        records.append(record)
    return records


def training_rows(splits: Splits) -> TrainingRows:
    """The training rows of `splits` as the model interface shows them (targets, inputs by row index)."""
    train = splits.train
    return TrainingRows(splits.items[train.target_pos], lambda index: splits.batch(train.subset(index))[:2])


class Trainer:
    """Trains one model on one dataset and writes config, log, metrics and per-user ranks to `out`."""

    def __init__(
        self,
        model: SequentialModel,
        splits: Splits,
        config: TrainConfig,
        out: Path,
        device: torch.device,
        *,
        progress: bool = True,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ):
        self.model = model.to(device)
        self.splits = splits.to(device)
        self.config = config
        self.out = Path(out)
        self.device = device
        self.progress = progress
        self.on_epoch = on_epoch
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.autocast = torch.bfloat16 if config.amp == "bf16" else None
        if config.amp not in ("none", "bf16"):
            raise TedbenchError(f"unknown --amp {config.amp!r} (known: none, bf16)")
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = config.tf32
            torch.backends.cudnn.allow_tf32 = config.tf32
        self.loss_fn = torch.compile(self.model.loss) if config.compile else self.model.loss
        self.ckpt_dir = self.out / "checkpoints"
        self.pretrain_epochs = (
            int(self.model.config.get("pretrain_epochs", 0)) if hasattr(self.model, "pretrain_loss") else 0
        )
        self.pre_optimizer = (
            torch.optim.Adam(self.model.parameters(), lr=config.learning_rate) if self.pretrain_epochs else None
        )
        self.train_rows = training_rows(self.splits)
        self.model.attach(self.train_rows)
        self._restored: tuple[dict[str, Any], list[dict[str, Any]]] | None = None

    # -- one step, one epoch -----------------------------------------------------------------
    def step(self, index: torch.Tensor, pretrain: bool = False) -> torch.Tensor:
        """One optimisation step on the training rows `index`; returns the batch's mean loss (on device)."""
        seq, length, target = self.splits.batch(self.splits.train.subset(index))
        batch = Batch(seq, length, target, self.model.batch_extras(self.train_rows, index))
        loss_fn = self.model.pretrain_loss if pretrain else self.loss_fn
        optimizer = self.pre_optimizer if pretrain else self.optimizer
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def _train_epoch(self, epoch: int, pretrain: bool = False) -> tuple[float, int]:
        self.model.train()
        generator = torch.Generator().manual_seed(self.config.seed * 1000003 + epoch + (10**6 if pretrain else 0))
        order = torch.randperm(len(self.splits.train), generator=generator).to(self.device)
        n_steps = -(-len(order) // self.config.batch_size)
        if self.config.max_steps_per_epoch is not None:
            n_steps = min(n_steps, self.config.max_steps_per_epoch)
        total = torch.zeros((), device=self.device)
        bar = tqdm(range(n_steps), desc=f"epoch {epoch}", leave=False, disable=not self.progress, dynamic_ncols=True)
        for step in bar:
            loss = self.step(order[step * self.config.batch_size : (step + 1) * self.config.batch_size], pretrain)
            total += loss.float()
            if step == n_steps // 2:
                pause_point("train.mid_epoch")
            if step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}")
        total = float(total)  # one sync per epoch: a NaN or inf loss at any step leaves the sum non-finite
        if not np.isfinite(total):
            raise TedbenchError(f"training diverged in epoch {epoch} (loss {total}); lower the learning rate")
        return total, n_steps

    def evaluate(self, split: str) -> np.ndarray:
        rows = getattr(self.splits, split)
        return full_sort_ranks(
            self.model, self.splits, rows, memory_cap=self.config.memory_cap, autocast_dtype=self.autocast
        )

    # -- checkpoints -------------------------------------------------------------------------
    def _state(self, epoch: int, stopping: EarlyStopping) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "best": stopping.best,
            "bad_epochs": stopping.bad_epochs,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pre_optimizer": self.pre_optimizer.state_dict() if self.pre_optimizer else None,
            "rng": _rng_state(),
        }

    def restore(self) -> None:
        """Load the last checkpoint and the log lines it covers into memory; writes nothing.

        Raises TedbenchError naming the file when the checkpoint cannot be read or does not fit the
        model, or when a log line other than the last is not JSON (a torn last line, left by a kill
        mid-write, is dropped with a warning).
        """
        path = self.ckpt_dir / "last.pt"
        if not path.exists():
            raise TedbenchError(f"{path}: no checkpoint to resume from")
        try:
            state = _load(path)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.pre_optimizer is not None:
                self.pre_optimizer.load_state_dict(state["pre_optimizer"])
            missing = {"epoch", "best", "bad_epochs", "rng"} - set(state)
            if missing:
                raise KeyError(f"no {', '.join(sorted(missing))}")
        except Exception as exc:  # torch raises many types for a truncated or foreign file
            reason = " ".join(str(exc).split())[:200]
            raise TedbenchError(
                f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: {reason}); "
                "start again with --overwrite"
            ) from exc
        lines = [line for line in _read_log(self.out / "log.jsonl") if line["epoch"] <= state["epoch"]]
        self._restored = (state, lines)

    def _resume(self) -> tuple[int, EarlyStopping]:
        if self._restored is None:
            self.restore()
        state, lines = self._restored
        _set_rng_state(state["rng"])
        with atomic_path(self.out / "log.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return state["epoch"] + 1, EarlyStopping(self.config.patience, state["best"], state["bad_epochs"])

    def _checkpoint(self, epoch: int, stopping: EarlyStopping) -> None:
        _save(self.ckpt_dir / "last.pt", self._state(epoch, stopping))
        pause_point("train.after_checkpoint")

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            start, stopping = self._resume()
        else:
            seed_everything(self.config.seed)
            start, stopping = -self.pretrain_epochs, EarlyStopping(self.config.patience)
            (self.out / "log.jsonl").unlink(missing_ok=True)
        for epoch in range(start, 0):
            self._pretrain_epoch(epoch, stopping)
        for epoch in range(max(start, 0), self.config.epochs):
            if stopping.should_stop:
                break
            t0 = time.perf_counter()
            loss_sum, n_steps = self._train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            valid = summarize(self.evaluate("valid"))
            t2 = time.perf_counter()
            improved = stopping.update(valid[SELECTION_METRIC])
            if improved:
                _save(self.ckpt_dir / "best.pt", {"epoch": epoch, "model": self.model.state_dict()})
            record = {
                "epoch": epoch,
                "train_seconds": round(t1 - t0, 3),
                "eval_seconds": round(t2 - t1, 3),
                "loss": loss_sum,
                "loss_mean": loss_sum / max(1, n_steps),
                "valid": {k: round(v, 4) for k, v in valid.items()},
                "improved": improved,
            }
            with open(self.out / "log.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
            if self.progress:
                tqdm.write(
                    f"epoch {epoch}: loss {record['loss_mean']:.4f}  valid ndcg@10 {valid[SELECTION_METRIC]:.4f}  "
                    f"({record['train_seconds']:.1f}s + {record['eval_seconds']:.1f}s){'  *' if improved else ''}",
                    file=sys.stderr,
                )
            self._checkpoint(epoch, stopping)
            if self.on_epoch is not None:
                self.on_epoch(epoch, valid)
        return self._finish()

    def _pretrain_epoch(self, epoch: int, stopping: EarlyStopping) -> None:
        """A pre-training epoch (numbered -pretrain_epochs..-1): no evaluation, checkpointed."""
        t0 = time.perf_counter()
        loss_sum, n_steps = self._train_epoch(epoch, pretrain=True)
        record = {
            "epoch": epoch,
            "stage": "pretrain",
            "train_seconds": round(time.perf_counter() - t0, 3),
            "loss": loss_sum,
            "loss_mean": loss_sum / max(1, n_steps),
        }
        with open(self.out / "log.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        self._checkpoint(epoch, stopping)

    def _finish(self) -> dict[str, Any]:
        best_state = _load(self.ckpt_dir / "best.pt")
        self.model.load_state_dict(best_state["model"])
        valid_ranks, test_ranks = self.evaluate("valid"), self.evaluate("test")
        for name, ranks in (("valid", valid_ranks), ("test", test_ranks)):
            with atomic_path(self.out / f"{name}_ranks.npy") as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, ranks)
        write_users(self.out / USERS, self.splits)
        metrics = {
            "best_epoch": best_state["epoch"],
            "valid": {k: round(v, 4) for k, v in summarize(valid_ranks).items()},
            "test": {k: round(v, 4) for k, v in summarize(test_ranks).items()},
            "users": int(len(test_ranks)),
        }
        pause_point("train.before_metrics")
        write_json(self.out / "metrics.json", metrics)
        return metrics


def write_users(path: Path, splits: Splits) -> None:
    """`users.tsv`: one line per user in the order of the rank files, its source id and training-history length."""
    lines = [f"{token}\t{length}\n" for token, length in zip(splits.user_tokens, splits.history_lengths().tolist())]
    write_text(path, "user\ttrain_history\n" + "".join(lines))

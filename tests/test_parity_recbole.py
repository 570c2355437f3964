"""Numerical parity with RecBole 1.2.1 (PyPI): models with copied weights, the full-sort evaluator, early stopping.

Each model test builds RecBole's model on a tiny atomic dataset, copies its weights into tedbench's model under
the mapped names, and compares, on the same training rows of RecBole's own augmented training set: the
full-sort scores and the CE loss in eval mode (atol 1e-5), then the loss and every parameter's gradient of one
training step with dropout off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.engine.trainer import EarlyStopping
from benchmark.fidelity.transplant import FEAREC_RULES
from benchmark.fidelity.verify import recbole_config
from benchmark.metrics import summarize, target_ranks
from benchmark.model import Batch, DatasetInfo
from benchmark.registry import create_model
from tests.modelkit import text_matrix
from tests.recbolekit import (
    BASE_CONFIG,
    S3REC_RULES,
    TRANSFORMER_RULES,
    copy_weights,
    mapped_tensors,
    recbole,
    recbole_dataset,
    sequence_batch,
    write_tiny_dataset,
)

pytestmark = pytest.mark.parity

MAX_LEN = 10  # even: RecBole's FEARec inverts its rfft without `n`, which returns 2·(L//2) samples
ATOL = 1e-5
SIZES = {
    "hidden_size": 16,
    "inner_size": 24,
    "n_layers": 2,
    "n_heads": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "hidden_dropout_prob": 0.0,
    "attn_dropout_prob": 0.0,
}
FEAREC_STOCK = {
    "contrast": "none",
    "global_ratio": 1.0,
    "dual_domain": False,
    "std": False,
    "spatial_ratio": 0.0,
    "topk_factor": 1,
    "fredom": False,
}
FEAREC_TEDBENCH = {
    "contrast": "us_x",
    "sim": "dot",
    "tau": 1.0,
    "lmd": 0.1,
    "lmd_sem": 0.1,
    "global_ratio": 0.6,
    "dual_domain": True,
    "std": True,
    "spatial_ratio": 0.1,
    "topk_factor": 1,
    "fredom": False,
}


def batch_of(interaction) -> Batch:
    return Batch(interaction["item_id_list"], interaction["item_length"], interaction["item_id"])


def assert_same_forward(rb, ted, interaction, rb_loss=None, ted_loss=None) -> None:
    """Eval-mode full-sort scores and CE loss."""
    rb.eval(), ted.eval()
    batch = batch_of(interaction)
    with torch.no_grad():
        torch.testing.assert_close(
            ted.full_sort_scores(batch.seq, batch.length), rb.full_sort_predict(interaction), rtol=0, atol=ATOL
        )
        expected = (rb_loss or rb.calculate_loss)(interaction)
        torch.testing.assert_close((ted_loss or ted.loss)(batch), expected, rtol=0, atol=ATOL)


def assert_same_gradients(rb, ted, rules, rb_loss, ted_loss, skip_source=()) -> None:
    """Training-mode loss (dropout 0) and the gradient of every mapped parameter."""
    rb.train(), ted.train()
    rb.zero_grad(), ted.zero_grad()
    expected, got = rb_loss(), ted_loss()
    torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)
    expected.backward()
    got.backward()
    rb_grads = mapped_tensors({n: p.grad for n, p in rb.named_parameters() if p.grad is not None}, rules, skip_source)
    ted_grads = {n: p.grad for n, p in ted.named_parameters() if p.grad is not None}
    assert set(rb_grads) == set(ted_grads)
    for name, grad in rb_grads.items():
        torch.testing.assert_close(ted_grads[name], grad, rtol=1e-4, atol=ATOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("recbole")
    write_tiny_dataset(root, "tiny")
    write_tiny_dataset(root, "tinyattr", attributes=True)
    return root


def sasrec_pair(data_root):
    recbole()
    from recbole.model.sequential_recommender import SASRec

    config, data, train = recbole_dataset("SASRec", data_root, "tiny", MAX_LEN, SIZES)
    torch.manual_seed(0)
    rb = SASRec(config, train.dataset)
    ted = create_model("SASRec", DatasetInfo(n_items=data.item_num, max_len=MAX_LEN), SIZES)
    copy_weights(rb, ted, TRANSFORMER_RULES)
    return rb, ted, train


def test_sasrec_scores_loss_and_gradients(data_root) -> None:
    rb, ted, train = sasrec_pair(data_root)
    interaction = sequence_batch(train, 48)
    assert_same_forward(rb, ted, interaction)
    assert_same_gradients(
        rb, ted, TRANSFORMER_RULES, lambda: rb.calculate_loss(interaction), lambda: ted.loss(batch_of(interaction))
    )


def fearec_pair(data_root, options: dict):
    recbole()
    from recbole.model.sequential_recommender import FEARec

    rb_options = {**options, "contrast": None if options["contrast"] == "none" else options["contrast"]}
    config, data, train = recbole_dataset("FEARec", data_root, "tiny", MAX_LEN, {**SIZES, **rb_options})
    torch.manual_seed(0)
    rb = FEARec(config, train.dataset)
    ted = create_model("FEARec", DatasetInfo(n_items=data.item_num, max_len=MAX_LEN), {**SIZES, **options})
    copy_weights(rb, ted, FEAREC_RULES)
    return rb, ted, train


@pytest.mark.parametrize("options", [FEAREC_STOCK, FEAREC_TEDBENCH], ids=["stock-yaml", "tedbench-default"])
def test_fearec_scores_loss_and_gradients(data_root, options: dict) -> None:
    rb, ted, train = fearec_pair(data_root, options)
    interaction = sequence_batch(train, 48)

    def rb_loss():  # RecBole draws the same-target sequence inside calculate_loss and stores it as `sem_aug`
        return rb.calculate_loss(interaction)

    def ted_loss(batch: Batch | None = None):
        batch = batch or batch_of(interaction)
        if options["contrast"] != "none":
            batch.extra = {
                "same_target_seq": interaction["sem_aug"],
                "same_target_length": interaction["sem_aug_lengths"],
            }
        return ted.loss(batch)

    if options["contrast"] == "none":
        assert_same_forward(rb, ted, interaction)
    else:  # the contrastive terms need RecBole's sampled positives, so RecBole's loss is computed first
        rb.eval(), ted.eval()
        with torch.no_grad():
            expected = rb_loss()
            torch.testing.assert_close(ted_loss(), expected, rtol=0, atol=ATOL)
        assert_same_forward(rb, ted, interaction, rb_loss=lambda _: torch.zeros(()), ted_loss=lambda _: torch.zeros(()))
    state = {}

    def rb_train_loss():
        state["loss"] = rb_loss()
        return state["loss"]

    assert_same_gradients(rb, ted, FEAREC_RULES, rb_train_loss, ted_loss)


def s3rec_pair(data_root):
    recbole()
    from recbole.model.sequential_recommender import S3Rec

    overrides = {**SIZES, "item_attribute": "class", "train_stage": "pretrain", "mask_ratio": 0.3}
    config, data, train = recbole_dataset("S3Rec", data_root, "tinyattr", MAX_LEN, overrides)
    torch.manual_seed(0)
    rb = S3Rec(config, train.dataset)
    info = DatasetInfo(n_items=data.item_num, max_len=MAX_LEN, item_text=text_matrix(data.item_num, 12))
    ted = create_model("S3-Rec", info, {**SIZES, "mask_ratio": 0.3})
    copy_weights(rb, ted, S3REC_RULES, skip_source=("feature_embedding.weight",), skip_target=("attributes.",))
    return rb, ted, train, data


def test_s3rec_finetune_scores_loss_and_gradients(data_root) -> None:
    rb, ted, train, _ = s3rec_pair(data_root)
    rb.train_stage, rb.loss_fct = "finetune", nn.CrossEntropyLoss()  # what RecBole builds for fine-tuning
    interaction = sequence_batch(train, 48)
    assert_same_forward(rb, ted, interaction)
    skip = ("feature_embedding.weight",)
    assert_same_gradients(
        rb,
        ted,
        S3REC_RULES,
        lambda: rb.calculate_loss(interaction),
        lambda: ted.loss(batch_of(interaction)),
        skip_source=skip,
    )


def test_s3rec_pretraining_losses_on_the_same_corrupted_batch(data_root) -> None:
    """AAP, MIP, MAP and SP on identical corrupted inputs, RecBole's attribute table set to tedbench's adapted text.

    tedbench scores the attributes of all N ids (UniSRec's text variant); stock RecBole has the N − 1 real
    attribute tokens. So tedbench's AAP/MAP carry one more BCE column per scored position, the padding id's
    (label 0): Σ softplus(head(h)·A_0), added here explicitly.
    """
    rb, ted, train, data = s3rec_pair(data_root)
    with torch.no_grad():
        ted.attributes.linear.bias.normal_(0, 0.5)  # a non-trivial padding column A_0 = ReLU(b)
    interaction = sequence_batch(train, 32)
    batch = batch_of(interaction)
    torch.manual_seed(1)
    inputs = ted.pretrain_inputs(batch.seq, batch.length)
    table = ted.attributes.all_items().detach()
    feature_of_item = data.get_item_feature()["class"] - 1  # RecBole's feature row of each item id
    with torch.no_grad():
        rb.feature_embedding.weight[feature_of_item[1:]] = table[1:]
    features = F.one_hot(feature_of_item.clamp(min=0)[inputs.positive], rb.n_features)
    features = features * (inputs.positive != 0).unsqueeze(-1)  # padding slots carry no attribute
    rb_args = (
        features,
        inputs.masked,
        inputs.positive,
        inputs.negative,
        inputs.segment_masked,
        inputs.segment_positive,
        inputs.segment_negative,
    )
    rb.eval(), ted.eval()
    with torch.no_grad():
        ted_losses = ted.losses_of(inputs)
        hidden = ted._bidirectional_states(inputs.masked)
        masked = inputs.masked == ted.mask_token
        associated = (inputs.masked != 0) & ~masked
        padding_column = {
            "aap": F.softplus(ted.aap_head(hidden[associated]) @ table[0]).sum(),
            "map": F.softplus(ted.map_head(hidden[masked]) @ table[0]).sum(),
        }
        for task in ("aap", "mip", "map", "sp"):
            for other in ("aap", "mip", "map", "sp"):
                setattr(rb, f"{other}_weight", float(other == task))
            expected = rb.pretrain(*rb_args) + padding_column.get(task, 0.0)
            torch.testing.assert_close(
                ted_losses[task], expected, rtol=1e-6, atol=1e-4, msg=lambda m, t=task: f"{t}: {m}"
            )
    assert masked.any() and associated.any()


def recbole_metrics(scores: torch.Tensor, target: torch.Tensor, ks=(10, 20)) -> dict[str, float]:
    """RecBole's Collector + Evaluator on a full-sort score matrix (id 0 masked as its Trainer does), unrounded."""
    recbole()
    from recbole.evaluator import Collector, Evaluator

    config = recbole_config(
        "SASRec",
        "unused",
        {
            **BASE_CONFIG,
            "data_path": "unused",
            "metrics": ["Recall", "NDCG"],
            "topk": list(ks),
            "metric_decimal_place": 17,
        },
    )
    collector, evaluator = Collector(config), Evaluator(config)
    scores = scores.clone()
    scores[:, 0] = -math.inf
    collector.eval_batch_collect(scores, None, torch.arange(len(target)), target)
    return dict(evaluator.evaluate(collector.get_data_struct()))


@pytest.mark.parametrize("n_items", [30, 400])
def test_full_sort_metrics_equal_recboles_evaluator(n_items: int) -> None:
    """Equal up to float summation order on tie-free scores. With exactly tied scores the two differ: tedbench
    ranks ties by lower id, RecBole takes `torch.topk`'s unspecified order among them."""
    generator = torch.Generator().manual_seed(n_items)
    scores = torch.randn(257, n_items, generator=generator, dtype=torch.float64).float()
    target = torch.randint(1, n_items, (257,), generator=generator)
    # make some targets the top item so that every rank band occurs
    scores[:40].scatter_(1, target[:40, None], 10.0)
    ours = summarize(target_ranks(scores, target).numpy())
    theirs = recbole_metrics(scores, target)
    assert set(ours) == set(theirs)
    for name, value in ours.items():
        assert value == pytest.approx(theirs[name], rel=1e-12, abs=1e-15), name
        assert round(value, 4) == round(theirs[name], 4), name


def test_full_sort_metrics_on_model_scores(data_root) -> None:
    """The same on a model's score matrix: SASRec's full-sort scores of RecBole's training rows (16 ids: k 5, 10)."""
    rb, ted, train = sasrec_pair(data_root)
    interaction = sequence_batch(train, 64)
    ted.eval()
    scores = ted.full_sort_scores(interaction["item_id_list"], interaction["item_length"])
    ours = summarize(target_ranks(scores, interaction["item_id"]).numpy(), ks=(5, 10))
    theirs = recbole_metrics(scores, interaction["item_id"], ks=(5, 10))
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def recbole_stopping_epoch(curve: list[float], stopping_step: int) -> tuple[int, int]:
    """(best epoch, last epoch run) of RecBole's Trainer loop over a validation curve (its 4-decimal rounding)."""
    from recbole.utils import early_stopping

    best, cur_step, best_epoch = -np.inf, 0, -1
    for epoch, value in enumerate(curve):
        best, cur_step, stop, update = early_stopping(round(value, 4), best, cur_step, max_step=stopping_step)
        if update:
            best_epoch = epoch
        if stop:
            return best_epoch, epoch
    return best_epoch, len(curve) - 1


def tedbench_stopping_epoch(curve: list[float], patience: int) -> tuple[int, int]:
    stopper, best_epoch = EarlyStopping(patience), -1
    for epoch, value in enumerate(curve):
        if stopper.update(value):
            best_epoch = epoch
        if stopper.should_stop:
            return best_epoch, epoch
    return best_epoch, len(curve) - 1


@pytest.mark.parametrize("patience", [0, 2, 10])
def test_early_stopping_picks_recboles_epoch(patience: int) -> None:
    recbole()
    rng = np.random.default_rng(patience)
    curves = [list(np.cumsum(rng.normal(0.001, 0.004, 60)) + 0.05) for _ in range(50)]
    curves.append([0.04321, 0.04324, 0.04319, 0.043241, 0.04322] * 4)  # ties after rounding count as improvements
    curves.append([0.1] + [0.09] * 30)
    for curve in curves:
        assert tedbench_stopping_epoch(curve, patience) == recbole_stopping_epoch(curve, patience)

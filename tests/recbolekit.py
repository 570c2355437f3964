"""RecBole 1.2.1 side of the parity tests: tiny atomic datasets, configs, models, and the weight-name mapping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.engine.trainer import TrainConfig
from benchmark.fidelity.transplant import (
    NAME_MAPS,
    TRANSFORMER_RULES,
    item_order,
    renamed,
    to_reference,
    to_tedbench,
    transplant,
)
from benchmark.fidelity.verify import Setup, prepare, recbole_config, reference_data
from benchmark.recbole_compat import import_recbole
from benchmark.registry import create_model

# What every parity config shares: CPU, no negative sampling (full-softmax CE), nothing written.
BASE_CONFIG = {
    "use_gpu": False,
    "device": "cpu",
    "loss_type": "CE",
    "train_neg_sample_args": None,
    "load_col": None,
    "user_inter_num_interval": None,
    "item_inter_num_interval": None,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
    "seed": 0,
}

S3REC_RULES = TRANSFORMER_RULES + [(rf"^{task}_norm\.", f"{task}_head.") for task in ("aap", "mip", "map", "sp")]


def recbole():
    """The recbole package made importable here; without it a skip, or a failure when
    TEDBENCH_REQUIRE_RECBOLE=1 (CI)."""
    try:
        return import_recbole()
    except ImportError as exc:
        message = f"RecBole 1.2.1 is not installed ({exc}); `make install` installs it"
        if os.environ.get("TEDBENCH_REQUIRE_RECBOLE") == "1":
            pytest.fail(message)
        pytest.skip(message)


def mapped_tensors(
    named: dict[str, torch.Tensor], rules: list[tuple[str, str]], skip: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """RecBole's named tensors under tedbench's names, leaving out the names in `skip`."""
    return {renamed(name, rules): value for name, value in named.items() if name not in skip}


def copy_weights(
    source: torch.nn.Module,
    target: torch.nn.Module,
    rules: list[tuple[str, str]],
    skip_source: tuple[str, ...] = (),
    skip_target: tuple[str, ...] = (),
) -> None:
    """Load RecBole's parameters into the tedbench model; every parameter on either side must be matched."""
    weights = mapped_tensors(dict(source.named_parameters()), rules, skip_source)
    own = {name for name, _ in target.named_parameters() if not name.startswith(skip_target)}
    assert set(weights) == own, f"unmatched: RecBole {sorted(set(weights) - own)}, ours {sorted(own - set(weights))}"
    target.load_state_dict(weights, strict=False)


def write_tiny_dataset(
    root: Path,
    name: str,
    n_users: int = 24,
    n_steps: int = 9,
    n_items: int = 15,
    seed: int = 0,
    attributes: bool = False,
) -> Path:
    """`root/name/name.inter` (user, item, timestamp) with every item used, and `name.item` (one `class`
    token per item) if `attributes`; returns `root`."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(n_users):
        for step in range(n_steps):
            item = (user + step) % n_items if step < 2 else rng.integers(0, n_items)
            lines.append(f"u{user}\ti{item}\t{step}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    if attributes:
        rows = ["item_id:token\tclass:token"] + [f"i{item}\tc{item}" for item in range(n_items)]
        (folder / f"{name}.item").write_text("\n".join(rows) + "\n")
    return root


def recbole_dataset(model: str, data_root: Path, dataset: str, max_len: int, overrides: dict):
    """(config, sequential dataset, train dataloader) for `model` on `data_root/dataset`."""
    recbole()
    from recbole.data import create_dataset, data_preparation

    config = recbole_config(
        model,
        dataset,
        {
            **BASE_CONFIG,
            "data_path": str(data_root),
            "MAX_ITEM_LIST_LENGTH": max_len,
            "train_batch_size": 64,
            "eval_batch_size": 64,
            **overrides,
        },
    )
    data = create_dataset(config)
    train, _, _ = data_preparation(config, data)
    return config, data, train


def sequence_batch(train_loader, rows: int):
    """The first `rows` training interactions of RecBole's (augmented) training set."""
    from recbole.data.interaction import Interaction

    feat = train_loader.dataset.inter_feat
    return Interaction({key: feat[key][:rows].clone() for key in feat.columns})


def perturbed(state: dict[str, torch.Tensor], seed: int, keep: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Every tensor moved off its initial value (zero-initialised gates and biases included)."""
    generator = torch.Generator().manual_seed(seed)
    return {k: v if k in keep else v + 0.05 * torch.randn(v.shape, generator=generator) for k, v in state.items()}


# -- official RecBole-based checkouts (TedRec, UniSRec): tiny models on the bundled sample ------------------------
TINY_MOE = {"hidden_size": 8, "inner_size": 16, "n_layers": 1, "n_exps": 2}


def official_checkout(variable: str, marker_file: str, repository: str) -> tuple[str | None, list]:
    """(the checkout named by the environment `variable`, the pytest marks that skip without it)."""
    code = os.environ.get(variable)
    return code, [
        pytest.mark.parity,
        pytest.mark.skipif(
            not code or not (Path(code) / marker_file).is_file(),
            reason=f"no official checkout: set {variable} to a checkout of {repository} (CI cannot fetch it)",
        ),
    ]


def official_setup(model: str, code: str, sample_root: Path, work: Path) -> Setup:
    """verify's setup of `model` at `TINY_MOE` sizes against the official checkout `code` (random item text)."""
    recbole()
    return prepare(
        model,
        "OR-sample",
        data_root=sample_root,
        overrides=TINY_MOE,
        train_config=TrainConfig(),
        against="official",
        reference_code=Path(code),
        device="cpu",
        work=work,
        encoder="random",
    )


def perturbed_states(setup: Setup, overrides: dict = TINY_MOE) -> tuple[dict, dict, torch.Tensor]:
    """(tedbench weights, reference weights, item order), each from its own model's initialisation, then perturbed."""
    config, train, _, _ = reference_data(setup.reference, setup.settings(2020), setup.splits)
    torch.manual_seed(0)
    theirs = setup.reference.model_class(config, train.dataset).state_dict()
    ours = create_model(setup.model, setup.info, overrides).state_dict()
    keep = NAME_MAPS[setup.model].inputs
    return perturbed(ours, 1), perturbed(theirs, 2, keep=keep), item_order(train.dataset)


def assert_name_map_round_trips(setup: Setup, states: tuple[dict, dict, torch.Tensor], overrides: dict) -> None:
    """tedbench -> reference -> tedbench and reference -> tedbench -> reference give back every tensor exactly."""
    ours, theirs, order = states
    names = NAME_MAPS[setup.model]
    template_ours = create_model(setup.model, setup.info, overrides).state_dict()
    back = to_tedbench(names, to_reference(names, ours, theirs, order), template_ours, order)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    there = to_reference(names, to_tedbench(names, theirs, template_ours, order), theirs, order)
    assert there.keys() == theirs.keys() and all(torch.equal(there[k], theirs[k]) for k in theirs)


def assert_transplant_scores_equal(setup: Setup, states: tuple[dict, dict, torch.Tensor]) -> None:
    """Each side's evaluation of the other side's weights equals its own (metrics, and scores within 1e-5)."""
    ours, theirs, _ = states
    rows = transplant(setup, 2020, ours, theirs)
    assert len(rows) == 4
    for row in rows:
        assert row["equal"], row
        assert row["score_gap"] < 1e-5
        assert 0 < row["own"]["ndcg@20"] < 1

"""The reference implementations `tedbench verify` compares with: stock RecBole 1.2.1 models and official checkouts.

A `Reference` says everything verify needs to run the other side: the model class, the dataset class (None:
RecBole's `create_dataset`), the config files it reads, the tedbench options passed through under the same name,
the RecBole keys verify sets from the data (item text), and what identifies the code in a stored result.

Official code that is itself built on RecBole (TedRec and UniSRec, one `OfficialCode` entry each)
is loaded from a checkout the user names (`--reference-code PATH`): its model and dataset classes are imported
from their files with importlib, and their `from recbole...` imports resolve to the installed RecBole through
the shims of `benchmark.recbole_compat`. Nothing of an official checkout is ever copied into tedbench.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.errors import TedbenchError
from benchmark.fsutil import atomic_path
from benchmark.recbole_compat import require_recbole
from benchmark.recbole_models import PREFIX, recbole_class

ARCHITECTURE = (
    "hidden_size",
    "inner_size",
    "n_layers",
    "n_heads",
    "hidden_dropout_prob",
    "attn_dropout_prob",
    "hidden_act",
    "layer_norm_eps",
    "initializer_range",
)
FEAREC_OPTIONS = (
    "contrast",
    "sim",
    "tau",
    "lmd",
    "lmd_sem",
    "global_ratio",
    "dual_domain",
    "spatial_ratio",
    "std",
    "topk_factor",
    "fredom",
    "fredom_type",
)
# tedbench model -> (RecBole model, the options passed through unchanged)
RECBOLE_MODELS = {"SASRec": ("SASRec", ARCHITECTURE), "FEARec": ("FEARec", ARCHITECTURE + FEAREC_OPTIONS)}


@dataclass(frozen=True)
class Reference:
    """One reference implementation of one tedbench model, ready to run."""

    key: str  # "recbole" or "official": its run folders' and CSV columns' prefix
    label: str  # how reports name it
    model_class: type
    dataset_class: type | None  # None: RecBole's create_dataset
    config_files: tuple[str, ...]  # read by RecBole's Config before verify's own settings (which win)
    options: tuple[str, ...]  # tedbench options passed through under the same name
    text_suffix: str | None  # item text as DATASET.<suffix>: raw float32 rows indexed by item id, row 0 zero
    text_settings: Callable[[int, dict[str, Any]], dict[str, Any]] | None  # (text dim, model config) -> settings
    data_settings: dict[str, Any] = field(default_factory=dict)  # keys of its config files verify's data replaces
    identity: dict[str, Any] = field(default_factory=dict)  # what a stored result must match (code, commit)


@dataclass(frozen=True)
class OfficialCode:
    """What tedbench knows of an official RecBole-based checkout of one model (paths relative to the checkout)."""

    repository: str
    commit: str  # the commit the mapping was written against (verify records the checkout's actual HEAD)
    model_file: str
    model_class: str
    dataset_file: str | None
    dataset_class: str | None
    props: tuple[str, ...]
    options: tuple[str, ...]
    fixed: dict[str, Any]  # tedbench options the official code hard-codes: verify refuses other values
    text_suffix: str | None = None
    text_settings: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    data_settings: dict[str, Any] = field(default_factory=dict)


def plm_settings(dim: int, model_config: dict[str, Any]) -> dict[str, Any]:
    """UniSRec-family text keys: the embedding width and the adaptor's [text dim, hidden size]."""
    return {"plm_size": dim, "adaptor_layers": [dim, model_config["hidden_size"]]}


# The official props read pre-split benchmark files (`benchmark_filename`, `item_id_list` as a token_seq alias);
# verify writes one atomic .inter file instead and lets RecBole augment and split it (its rows are checked equal).
BENCHMARK_FILES_OFF = {"benchmark_filename": None, "alias_of_item_id": None}

OFFICIAL = {
    "TedRec": OfficialCode(
        repository="RUCAIBox/TedRec",
        commit="e6b3cb9",
        model_file="tedrec.py",
        model_class="TedRec",
        dataset_file="data/dataset.py",
        dataset_class="TedRecDataset",
        props=("props/TedRec.yaml", "props/overall.yaml"),
        options=ARCHITECTURE + ("n_exps", "adaptor_dropout_prob", "temperature"),
        fixed={
            "modulation": "position",
            "use_id_filter": True,
            "use_text_fusion": True,
            "use_gates": True,
            "adaptor_dropout": "position",
        },
        text_suffix="feat1CLS",
        text_settings=plm_settings,
        data_settings=BENCHMARK_FILES_OFF,
    ),
    # from scratch on the target data: the official fine-tuning script's props, `train_stage: transductive_ft`
    # (ID embeddings + MoE-adapted text, no pre-trained weights loaded)
    "UniSRec": OfficialCode(
        repository="RUCAIBox/UniSRec",
        commit="05aa5cb",
        model_file="unisrec.py",
        model_class="UniSRec",
        dataset_file="data/dataset.py",
        dataset_class="UniSRecDataset",
        props=("props/UniSRec.yaml", "props/finetune.yaml"),
        options=ARCHITECTURE + ("n_exps", "adaptor_dropout_prob", "temperature"),
        fixed={},
        text_suffix="feat1CLS",
        text_settings=plm_settings,
        data_settings=BENCHMARK_FILES_OFF,
    ),
}


def load_class(checkout: Path, relative: str, name: str) -> type:
    """Class `name` of the checkout's file `relative`, imported under a private module name; the checkout is on
    sys.path meanwhile so that its own sibling imports resolve."""
    path = checkout / relative
    if not path.is_file():
        raise TedbenchError(f"--reference-code {checkout}: {relative} is missing (is this the right checkout?)")
    module_name = "tedbench_reference." + relative.removesuffix(".py").replace("/", ".")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(checkout))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(checkout))
    if not hasattr(module, name):
        raise TedbenchError(f"--reference-code {checkout}: {relative} defines no {name}")
    return getattr(module, name)


def checkout_commit(checkout: Path) -> str:
    """The HEAD commit of an official code checkout (the reports name it); an error when it is not a git work tree."""
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise TedbenchError(f"{checkout}: not a git checkout of the official code ({result.stderr.strip()})")
    return result.stdout.strip()


def recbole_counterpart(model: str, model_config: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(RecBole model, options passed through) of a tedbench model: its `RECBOLE_MODELS` entry, or for a RecBole
    model run by tedbench (`recbole:<Name>`) that model itself with every option (RecBole's Trainer on the other side).
    """
    if model.lower().startswith(PREFIX):
        return recbole_class(model[len(PREFIX) :]).__name__, tuple(k for k in model_config if k != "learning_rate")
    if model not in RECBOLE_MODELS:
        raise TedbenchError(
            f"--model {model}: verify --against recbole supports {', '.join(RECBOLE_MODELS)} and {PREFIX}<Name>"
        )
    return RECBOLE_MODELS[model]


def resolve(against: str, model: str, model_config: dict[str, Any], code: Path | None) -> Reference:
    """The reference `--against` names for `model` (`code`: the official checkout)."""
    require_recbole("tedbench verify")
    if against == "recbole":
        from recbole.utils import get_model as recbole_model_class

        name, options = recbole_counterpart(model, model_config)
        return Reference(
            "recbole",
            "RecBole 1.2.1",
            recbole_model_class(name),
            None,
            (),
            options,
            None,
            None,
            identity={"code": f"recbole {name}"},
        )
    if model not in OFFICIAL:
        raise TedbenchError(f"--model {model}: verify --against official supports {', '.join(OFFICIAL)}")
    if code is None:
        raise TedbenchError("--against official needs --reference-code PATH (a checkout of the official code)")
    entry, code = OFFICIAL[model], Path(code).resolve()
    if not code.is_dir():
        raise TedbenchError(f"--reference-code {code}: no such folder")
    wrong = {k: model_config[k] for k, v in entry.fixed.items() if model_config[k] != v}
    if wrong:
        raise TedbenchError(
            f"--set {wrong}: the official {model} code has no such option (it hard-codes {entry.fixed})"
        )
    commit = checkout_commit(code)
    dataset_class = load_class(code, entry.dataset_file, entry.dataset_class) if entry.dataset_file else None
    return Reference(
        "official",
        f"official {model} ({entry.repository}@{commit[:7]})",
        load_class(code, entry.model_file, entry.model_class),
        dataset_class,
        tuple(str(code / props) for props in entry.props),
        entry.options,
        entry.text_suffix,
        entry.text_settings,
        dict(entry.data_settings),
        identity={"code": f"{entry.repository} {entry.model_file}:{entry.model_class}", "commit": commit},
    )


def write_text_features(path: Path, item_text: torch.Tensor) -> None:
    """Item text as the official datasets read it: raw float32 rows, row i = item id i (row 0, padding, zero)."""
    matrix = item_text.detach().cpu().numpy().astype(np.float32)
    if matrix[0].any():
        raise TedbenchError(f"{path}: the text matrix's padding row 0 is not zero")
    with atomic_path(path) as tmp:
        matrix.tofile(tmp)

"""Any RecBole 1.2.1 sequential model as a tedbench model: `recbole:<Name>` (e.g. recbole:GRU4Rec, recbole:BERT4Rec).

The model is RecBole's own class, built from a RecBole Config: the model's yaml defaults
(`recbole/properties/model/<Name>.yaml`, RecBole's learning rate included) are its tedbench options, overridden as any
model's (`--set`, a profile's sizes, `--params`); the protocol fixes CE over all items, no negative sampling and
sequences of `MAX_LEN`. tedbench's batches already have RecBole's layout (ids with 0 = padding, items left-aligned
and right-padded, a length per row), so they reach RecBole unchanged as an Interaction {item_id_list, item_length,
item_id}, through the model's batch transform as RecBole's dataloaders apply it to training and evaluation batches
(BERT4Rec's item masking), to the model's own `calculate_loss` (training) and `full_sort_predict` (evaluation).
Each model thus trains as RecBole trains it; Adam, batching, early stopping on valid NDCG@10 and full-sort ranking
are tedbench's engine. RecBole is imported on first use of such a name.

A RecBole model sees what every tedbench model sees, the item count and item sequences: one that reads user ids,
item features or the interaction table (Caser, FDSA, FEARec's same-target indices, ...) is refused, naming what it
read.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import TedbenchError, did_you_mean
from benchmark.model import Batch, DatasetInfo, SequentialModel
from benchmark.recbole_compat import recbole_config, require_recbole
from benchmark.registry import PAPER_LR_GRID, ModelEntry, SearchParam, register_family

PREFIX = "recbole:"
DATASET = "tedbench"  # the name RecBole's Config is given (no dataset files are read)
PROTOCOL = {"loss_type": "CE", "train_neg_sample_args": None}  # fixed by tedbench's protocol, not options
NOT_OPTIONS = ("loss_type", "transform")  # yaml keys that say how the model trains under the protocol
KEY = re.compile(r"^(\w+):", re.MULTILINE)  # a top-level key of a model yaml
# RecBole's sequential models that read item sequences only, so run here (the others read user ids, features, ...)
ITEM_SEQUENCE_MODELS = (
    "GRU4Rec",
    "BERT4Rec",
    "SASRec",
    "NARM",
    "STAMP",
    "NextItNet",
    "LightSANs",
    "CORE",
    "SRGNN",
    "GCSAN",
    "RepeatNet",
)
OTHER_KINDS = {
    "general_recommender": "general",
    "context_aware_recommender": "context-aware",
    "knowledge_aware_recommender": "knowledge-aware",
    "exlib_recommender": "external-library",
}


class UnsupportedInput(AttributeError):
    """A RecBole model read something tedbench does not give models (the message says what); an AttributeError, so
    that a model's `hasattr` probe of the dataset answers False."""


class ItemSequenceDataset:
    """The part of a RecBole Dataset a sequential model reads from tedbench's data: the number of item ids and the
    length of the item sequences."""

    def __init__(self, item_field: str, n_items: int, sequence_field: str, max_len: int):
        self.item_field = item_field
        self.n_items = n_items
        self.field2seqlen = {sequence_field: max_len}

    def num(self, field: str) -> int:
        if field != self.item_field:
            raise UnsupportedInput(f"the number of {field!r} values")
        return self.n_items

    @property
    def item_num(self) -> int:
        return self.n_items

    def __getattr__(self, name: str):
        raise UnsupportedInput(f"the dataset's {name!r}")


@functools.cache
def _interaction_class() -> type:
    """RecBole's Interaction, with a missing field reported as `UnsupportedInput`."""
    from recbole.data.interaction import Interaction

    class ItemSequenceBatch(Interaction):
        def __getitem__(self, index):
            if isinstance(index, str) and index not in self.interaction:
                raise UnsupportedInput(f"the batch field {index!r}")
            return super().__getitem__(index)

    return ItemSequenceBatch


@contextmanager
def item_sequences_only(name: str) -> Iterator[None]:
    """Turn a RecBole model's read of something tedbench does not give into an error naming it."""
    try:
        yield
    except UnsupportedInput as exc:
        raise TedbenchError(
            f"{name} reads {exc} from RecBole's data; tedbench gives RecBole models item sequences only "
            f"(these run: {', '.join(ITEM_SEQUENCE_MODELS)})"
        ) from None


class RecBoleModel(SequentialModel):
    """A RecBole sequential model behind tedbench's interface; `recbole_entry` makes one subclass per RecBole class."""

    recbole_class: type

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        from recbole.data.transform import construct_transform

        settings = {**config, **PROTOCOL, "MAX_ITEM_LIST_LENGTH": info.max_len}
        self.recbole_config = recbole_config(self.recbole_class, DATASET, settings, device=torch.device("cpu"))
        item_field = self.recbole_config["ITEM_ID_FIELD"]
        self.recbole_data = ItemSequenceDataset(
            item_field, info.n_items, item_field + self.recbole_config["LIST_SUFFIX"], info.max_len
        )
        self.transform = construct_transform(self.recbole_config)  # first: it names the fields BERT4Rec reads
        with item_sequences_only(self.registry_name):
            self.net = self.recbole_class(self.recbole_config, self.recbole_data)

    def interaction(self, seq: torch.Tensor, length: torch.Tensor, target: torch.Tensor | None = None):
        """tedbench's rows as RecBole's transformed batch; the model's `device` follows the batch's."""
        self.net.device = seq.device
        fields = {self.net.ITEM_SEQ: seq, self.net.ITEM_SEQ_LEN: length}
        if target is not None:
            fields[self.net.POS_ITEM_ID] = target
        return self.transform(self.recbole_data, _interaction_class()(fields))

    def loss(self, batch: Batch) -> torch.Tensor:
        """RecBole's `calculate_loss`; several terms are summed as RecBole's Trainer sums them."""
        with item_sequences_only(self.registry_name):
            losses = self.net.calculate_loss(self.interaction(batch.seq, batch.length, batch.target))
        return sum(losses) if isinstance(losses, tuple) else losses

    @torch.no_grad()
    def full_sort_scores(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """RecBole's `full_sort_predict` [B, n_items]."""
        with item_sequences_only(self.registry_name):
            return self.net.full_sort_predict(self.interaction(seq, length)).view(len(seq), -1)


def sequential_classes() -> dict[str, type]:
    """RecBole's sequential model classes by name."""
    import recbole.model.sequential_recommender as module
    from recbole.model.abstract_recommender import SequentialRecommender

    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, SequentialRecommender) and value is not SequentialRecommender
    }


def recbole_class(name: str) -> type:
    """The RecBole sequential model `name` (case-insensitive); an error for another kind or an unknown name."""
    recbole = require_recbole(f"model {PREFIX}{name}")
    classes = sequential_classes()
    by_lower = {key.lower(): value for key, value in classes.items()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    examples = f"sequential ones: {', '.join(ITEM_SEQUENCE_MODELS)}, ..."
    models = Path(recbole.__file__).parent / "model"  # one module per model, named in lower case
    for package, kind in OTHER_KINDS.items():
        if (models / package / f"{name.lower()}.py").is_file():
            raise TedbenchError(f"{PREFIX}{name} is a RecBole {kind} model; tedbench runs RecBole's {examples}")
    raise TedbenchError(f"unknown RecBole model {name!r} ({did_you_mean(name, classes)}; {examples})")


def yaml_options(model: type) -> dict[str, Any]:
    """The model's own yaml defaults and RecBole's learning rate, as RecBole's Config reads them (its number
    syntax included), without the keys the protocol fixes."""
    import recbole
    import yaml

    config = recbole_config(model, DATASET, dict(PROTOCOL), device=torch.device("cpu"))
    path = Path(recbole.__file__).parent / "properties" / "model" / f"{model.__name__}.yaml"
    own = (yaml.load(path.read_text(encoding="utf-8"), Loader=config.yaml_loader) if path.is_file() else None) or {}
    return {"learning_rate": config["learning_rate"]} | {k: config[k] for k in own if k not in NOT_OPTIONS}


@functools.cache
def _entry(model: type) -> ModelEntry:
    name = PREFIX + model.__name__
    cls = type(f"RecBole{model.__name__}", (RecBoleModel,), {"recbole_class": model, "registry_name": name})
    return ModelEntry(
        name=name,
        cls=cls,
        defaults=yaml_options(model),
        search_space={"learning_rate": SearchParam("categorical", choices=PAPER_LR_GRID)},
        needs_text=False,
        description=f"RecBole 1.2.1's {model.__name__}: its own calculate_loss and full_sort_predict",
        paper_grid={"learning_rate": PAPER_LR_GRID},
    )


@functools.cache
def option_names() -> set[str]:
    """The keys of the yaml files of RecBole's sequential models, read as text (RecBole is not imported: this is
    what `--set` accepts before a model is named); none when RecBole is not installed."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        return set()
    package = Path(spec.origin).parent
    modules = {path.stem for path in (package / "model" / "sequential_recommender").glob("*.py")}
    names = {"learning_rate"}
    for path in (package / "properties" / "model").glob("*.yaml"):
        if path.stem.lower() in modules:
            names |= set(KEY.findall(path.read_text(encoding="utf-8")))
    return names - set(NOT_OPTIONS)


def recbole_entry(name: str) -> ModelEntry:
    """The registry entry of `recbole:<name>` (built once per RecBole class)."""
    return _entry(recbole_class(name))


register_family(
    PREFIX,
    recbole_entry,
    option_names,
    f"any RecBole 1.2.1 sequential model on item sequences, e.g. {PREFIX}GRU4Rec, {PREFIX}BERT4Rec",
)

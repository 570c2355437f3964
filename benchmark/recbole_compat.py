"""RecBole 1.2.1 (the PyPI release) from tedbench: imported under numpy 2, pandas 3 and without its heavy extras,
and its Config built without the command line.

RecBole 1.2.1 predates numpy 2: its `Config.compatibility_settings` aliases `np.float = np.float_`
(both removed in numpy 2) and its metrics use `np.float`/`np.bool`. Its `recbole.utils` imports
`torch.utils.tensorboard` at module level although only its Trainer writes to TensorBoard. Call
`import_recbole()` (or `require_recbole()`) before any `recbole` import: it restores the removed numpy aliases,
installs an inert `SummaryWriter` when TensorBoard is absent, and re-states `Dataset._fill_nan` with assignments:
under pandas 3 (copy-on-write) its `feat[field].fillna(..., inplace=True)` is a silent no-op, so e.g.
the padding item's token features stay NaN and become INT64_MIN. Under pandas 3 `Series.agg(len)` returns the
Series' length, not each row's: `Dataset._remap` (token_seq fields) and `SequentialDataset._benchmark_presets`
(`item_length` of benchmark files) are re-stated with `Series.map(len)`. Nothing here changes RecBole's
arithmetic. Importing RecBole's sequential models turns on autograd's anomaly detection for the whole process
(`sequential_recommender/sine.py`), which makes any NaN in a backward pass raise; `import_recbole()` imports them
and restores the previous mode. Not covered: `float_seq` fields (their normalisation and discretisation use
`agg(len)` too).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import torch

from benchmark.errors import TedbenchError

NUMPY_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "str": str,
    "long": int,
    "complex": complex,
    "unicode": str,
}


class InertSummaryWriter:
    """Accepts every SummaryWriter call and records nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def restore_numpy_aliases() -> None:
    for name, value in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def stub_tensorboard() -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        module = types.ModuleType("torch.utils.tensorboard")
        module.SummaryWriter = InertSummaryWriter
        sys.modules["torch.utils.tensorboard"] = module


def fill_nan(dataset) -> None:
    """RecBole 1.2.1's `Dataset._fill_nan` (TOKEN -> 0, FLOAT -> the field's mean, sequences -> empty arrays),
    written as column assignments."""
    from recbole.utils import FeatureType

    for feat_name in dataset.feat_name_list:
        feat = getattr(dataset, feat_name)
        for field in feat:
            ftype = dataset.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x)


def remap(dataset, remap_list) -> None:
    """RecBole 1.2.1's `Dataset._remap` (tokens to ids by `pd.factorize`), splitting token_seq ids per row."""
    import pandas as pd
    from recbole.utils import FeatureType

    if len(remap_list) == 0:
        return
    tokens, split_point = dataset._concat_remaped_tokens(remap_list)
    new_ids_list, mp = pd.factorize(tokens)
    new_ids_list = np.split(new_ids_list + 1, split_point)
    mp = np.array(["[PAD]"] + list(mp))
    token_id = {t: i for i, t in enumerate(mp)}
    for (feat, field, ftype), new_ids in zip(remap_list, new_ids_list):
        if field not in dataset.field2id_token:
            dataset.field2id_token[field] = mp
            dataset.field2token_id[field] = token_id
        if ftype == FeatureType.TOKEN:
            feat[field] = new_ids
        elif ftype == FeatureType.TOKEN_SEQ:
            feat[field] = np.split(new_ids, np.cumsum(feat[field].map(len))[:-1])


def benchmark_presets(dataset) -> None:
    """RecBole 1.2.1's `SequentialDataset._benchmark_presets`: list fields, and `item_length` per row."""
    from recbole.utils import FeatureSource, FeatureType

    list_suffix = dataset.config["LIST_SUFFIX"]
    for field in dataset.inter_feat:
        if field + list_suffix in dataset.inter_feat:
            setattr(dataset, f"{field}_list_field", field + list_suffix)
    dataset.set_field_property(dataset.item_list_length_field, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
    dataset.inter_feat[dataset.item_list_length_field] = dataset.inter_feat[dataset.item_id_list_field].map(len)


def import_recbole() -> types.ModuleType:
    """The `recbole` package, importable and runnable here (raises ImportError if it is not installed)."""
    restore_numpy_aliases()
    stub_tensorboard()
    anomaly = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
    import recbole
    import recbole.model.sequential_recommender  # noqa: F401  (imported here: its sine.py has a global side effect)
    from recbole.data.dataset import Dataset, SequentialDataset

    torch.autograd.set_detect_anomaly(*anomaly)  # undo sine.py's `set_detect_anomaly(True)` at import

    Dataset._fill_nan = fill_nan
    Dataset._remap = remap
    SequentialDataset._benchmark_presets = benchmark_presets
    return recbole


INSTALL = "pip install --no-deps recbole==1.2.1 texttable colorlog colorama scikit-learn"


def require_recbole(purpose: str) -> types.ModuleType:
    """`import_recbole()`, or a TedbenchError saying that `purpose` needs RecBole 1.2.1 and how to install it."""
    try:
        return import_recbole()
    except ImportError as exc:
        raise TedbenchError(f"{purpose} needs RecBole 1.2.1, which is not installed ({exc}): {INSTALL}") from exc


def recbole_config(
    model: str | type,
    dataset: str,
    settings: dict[str, Any],
    config_files: tuple[str, ...] = (),
    *,
    device: torch.device | None = None,
):
    """RecBole's Config (model by name or class; `config_files` first, `settings` win), built without the command
    line (its Config also reads `--key=value` from sys.argv).

    With `device`, config["device"] is `device` and RecBole's own device set-up is skipped: it sets
    CUDA_VISIBLE_DEVICES from `gpu_id` and asks CUDA for its devices, which could hide GPUs from the whole process.
    """
    from recbole.config import Config

    class GivenDeviceConfig(Config):
        def _init_device(self) -> None:
            self.final_config_dict.update(single_spec=True, local_rank=0, device=device)

    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return (Config if device is None else GivenDeviceConfig)(
            model=model, dataset=dataset, config_file_list=list(config_files) or None, config_dict=settings
        )
    finally:
        sys.argv = argv

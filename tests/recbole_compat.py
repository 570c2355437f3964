"""Importing RecBole 1.2.1 (the PyPI release) under numpy 2, pandas 3 and without its heavy extras.

RecBole 1.2.1 predates numpy 2: its `Config.compatibility_settings` aliases `np.float = np.float_`
(both removed in numpy 2) and its metrics use `np.float`/`np.bool`. Its `recbole.utils` imports
`torch.utils.tensorboard` at module level although only its Trainer writes to TensorBoard. Call
`import_recbole()` before any `recbole` import: it restores the removed numpy aliases, installs an
inert `SummaryWriter` when TensorBoard is absent, and re-states `Dataset._fill_nan` with assignments:
under pandas 3 (copy-on-write) its `feat[field].fillna(..., inplace=True)` is a silent no-op, so e.g.
the padding item's token features stay NaN and become INT64_MIN. Nothing here changes RecBole's
arithmetic. Not covered: `token_seq`/`float_seq` fields (`Series.agg(len)` returns the Series' length
under pandas 3, so RecBole cannot remap them); the parity data use `token` and `float` fields only.
"""

from __future__ import annotations

import sys
import types

import numpy as np

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


def import_recbole() -> types.ModuleType:
    """The `recbole` package, importable and runnable here (raises ImportError if it is not installed)."""
    restore_numpy_aliases()
    stub_tensorboard()
    import recbole
    from recbole.data.dataset import Dataset

    Dataset._fill_nan = fill_nan
    return recbole

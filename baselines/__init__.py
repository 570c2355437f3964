"""The baselines of the paper's Table 3, one module each, plus what only they share (presets, fusion layers, text
adapter, negative sampling); the layers they share with TedRec are in `benchmark.layers`.

Every module in this package is imported here, so a new baseline registers itself by existing:
drop `baselines/mymodel.py` with a `@register_model` class and it is listed.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

"""Model registry: `@register_model` for in-tree models, an entry-point group for external packages.

A registry entry carries the model class, its defaults (the paper's values) and its Optuna search
space. Adding a model is one module with one decorated class; nothing else changes.

External packages declare, in their pyproject.toml:

    [project.entry-points."tedbench.models"]
    MyModel = "my_package.my_module:MyModel"

and the class is registered (by its decorator) when the entry point is loaded.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from benchmark.errors import TedbenchError

ENTRY_POINT_GROUP = "tedbench.models"

# In-tree modules that hold registered models; imported lazily on first lookup.
BUILTIN_MODULES = ("baselines", "tedrec.model", "tedrec.plugin")


@dataclass(frozen=True)
class SearchParam:
    """One dimension of a model's Optuna search space.

    kind: "categorical" (choices), "float" or "int" (low, high, log).
    """

    kind: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type
    defaults: dict[str, Any]
    search_space: dict[str, SearchParam]
    needs_text: bool
    description: str = ""
    paper_grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with `overrides`; unknown keys are an error."""
        config = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in config:
                raise TedbenchError(f"model {self.name} has no option {key!r} (known: {', '.join(sorted(config))})")
            config[key] = value
        return config


# The paper tunes only the learning rate, over this grid, for every model.
PAPER_LR_GRID = (5e-4, 1e-3, 5e-3)

_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    *,
    defaults: dict[str, Any],
    search_space: dict[str, SearchParam] | None = None,
    needs_text: bool = False,
    description: str = "",
):
    """Class decorator adding a model to the registry under `name`."""

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise TedbenchError(f"model {name!r} is registered twice ({_REGISTRY[name].cls} and {cls})")
        space = {"learning_rate": SearchParam("categorical", choices=PAPER_LR_GRID)}
        space.update(search_space or {})
        _REGISTRY[name] = ModelEntry(
            name=name,
            cls=cls,
            defaults=dict(defaults),
            search_space=space,
            needs_text=needs_text,
            description=description or (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else description,
            paper_grid={"learning_rate": PAPER_LR_GRID},
        )
        cls.registry_name = name
        return cls

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern (case-insensitive), sorted."""
    _load_all()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n.lower(), pattern.lower()))


def get_model(name: str) -> ModelEntry:
    _load_all()
    if name in _REGISTRY:
        return _REGISTRY[name]
    by_lower = {n.lower(): n for n in _REGISTRY}
    if name.lower() in by_lower:
        return _REGISTRY[by_lower[name.lower()]]
    raise TedbenchError(f"unknown model {name!r} (known: {', '.join(sorted(_REGISTRY))})")


def create_model(name: str, info, overrides: dict[str, Any] | None = None):
    """Build a registered model from its defaults plus overrides and the dataset info."""
    entry = get_model(name)
    return entry.cls(entry.config(overrides), info)

"""Model registry: `@register_model` for in-tree models, an entry-point group for external packages.

A registry entry carries the model class, its defaults (the paper's shared setting), its named presets
(e.g. `official`: the original paper's / official code's values, each cited in the model's module) and
its Optuna search space. Adding a model is one module with one decorated class; nothing else changes.

A preset is selected like any option, `--set preset=official` (or `"preset": "official"` in a params
file or a tuning trial): options resolve as defaults < preset < profile sizes < explicit options, and
the resolved configuration records the preset's name. `preset` is also a search dimension of every
model with presets, so a search space contains each preset exactly.

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


PRESET = "preset"  # the option that selects a named preset
DEFAULT_PRESET = "default"  # the name of the defaults themselves (a search dimension's other choice)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type
    defaults: dict[str, Any]
    search_space: dict[str, SearchParam]
    needs_text: bool
    description: str = ""
    paper_grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    preset_sources: dict[str, dict[str, str]] = field(default_factory=dict)  # preset -> option -> citation

    def options(self) -> set[str]:
        """Every key `config` accepts: the defaults' keys and, with presets, `preset`."""
        return set(self.defaults) | ({PRESET} if self.presets else set())

    def cited_presets(self) -> dict[str, dict[str, tuple[Any, str]]]:
        """The presets in `register_model`'s form, option -> (value, source) (to register a variant)."""
        return {p: {k: (v, self.preset_sources[p][k]) for k, v in values.items()} for p, values in self.presets.items()}

    def preset(self, name: str) -> dict[str, Any]:
        """The options preset `name` sets (`default`: none)."""
        if name == DEFAULT_PRESET:
            return {}
        if name not in self.presets:
            known = ", ".join([DEFAULT_PRESET, *sorted(self.presets)])
            raise TedbenchError(f"model {self.name} has no preset {name!r} (known: {known})")
        return self.presets[name]

    def config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults, then the preset named by `overrides['preset']` (if any), then the other overrides.

        Unknown keys are an error. A chosen preset's name is kept in the result (`preset`), so a run's
        recorded configuration says where its values came from.
        """
        overrides = dict(overrides or {})
        config = dict(self.defaults)
        for key in overrides:
            if key not in self.options():
                known = ", ".join(sorted(self.options()))
                raise TedbenchError(f"model {self.name} has no option {key!r} (known: {known})")
        if PRESET in overrides:
            name = str(overrides.pop(PRESET))
            config.update(self.preset(name))
            if name != DEFAULT_PRESET:
                config[PRESET] = name
        config.update(overrides)
        return config


# The paper tunes only the learning rate, over this grid, for every model.
PAPER_LR_GRID = (5e-4, 1e-3, 5e-3)
# The same grid with 1e-4, the learning rate of the official code of DIF-SR and DLFS-Rec.
OFFICIAL_LR_GRID = (1e-4, *PAPER_LR_GRID)

_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    *,
    defaults: dict[str, Any],
    search_space: dict[str, SearchParam] | None = None,
    needs_text: bool = False,
    description: str = "",
    presets: dict[str, dict[str, tuple[Any, str]]] | None = None,
):
    """Class decorator adding a model to the registry under `name`.

    `presets`: named option sets, option -> (value, source): each value with where it comes from
    (repository, file and line, or paper section); each option must be one of `defaults`. With any
    preset the search space gains the dimension `preset` over `default` and the preset names.
    """
    presets = presets or {}
    for preset_name, cited in presets.items():
        unknown = sorted(set(cited) - set(defaults))
        uncited = sorted(key for key, (_, source) in cited.items() if not source.strip())
        if unknown or uncited or preset_name == DEFAULT_PRESET:
            raise TedbenchError(f"model {name}: preset {preset_name!r} is reserved, sets unknown options "
                                f"({', '.join(unknown)}) or cites no source for ({', '.join(uncited)})")

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise TedbenchError(f"model {name!r} is registered twice ({_REGISTRY[name].cls} and {cls})")
        space = {"learning_rate": SearchParam("categorical", choices=PAPER_LR_GRID)}
        if presets:
            space[PRESET] = SearchParam("categorical", choices=(DEFAULT_PRESET, *presets))
        space.update(search_space or {})
        _REGISTRY[name] = ModelEntry(
            name=name,
            cls=cls,
            defaults=dict(defaults),
            search_space=space,
            needs_text=needs_text,
            description=description or (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else description,
            paper_grid={"learning_rate": PAPER_LR_GRID},
            presets={p: {k: value for k, (value, _) in cited.items()} for p, cited in presets.items()},
            preset_sources={p: {k: source for k, (_, source) in cited.items()} for p, cited in presets.items()},
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

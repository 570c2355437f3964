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

A model family (`register_family`) resolves every name `<prefix><Name>` on demand, e.g. `recbole:GRU4Rec` for any
RecBole sequential model: `get_model` builds its entry when it is first asked for; `list_models` lists registered
models only, and `list_families` the families.
"""

from __future__ import annotations

import fnmatch
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from benchmark.errors import TedbenchError, did_you_mean

ENTRY_POINT_GROUP = "tedbench.models"

# In-tree modules that hold registered models; imported lazily on first lookup.
BUILTIN_MODULES = ("baselines", "tedrec.model", "tedrec.plugin", "benchmark.recbole_models")


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

        Unknown keys and unacceptable values are an error. A chosen preset's name is kept in the result
        (`preset`), so a run's recorded configuration says where its values came from.
        """
        overrides = dict(check_options(overrides or {}, "", self))
        config = dict(self.defaults)
        if PRESET in overrides:
            name = str(overrides.pop(PRESET))
            config.update(self.preset(name))
            if name != DEFAULT_PRESET:
                config[PRESET] = name
        config.update(overrides)
        for size in ("hidden_size", "attribute_hidden_size"):
            if size in config and "n_heads" in config and config[size] % config["n_heads"]:
                raise TedbenchError(
                    f"model {self.name}: {size} {config[size]} is not a multiple of n_heads {config['n_heads']}"
                )
        return config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


# Options whose accepted range is not what their default's type implies.
_COUNTS_FROM_ZERO = {"pretrain_epochs"}
_STRICTLY_POSITIVE = {"learning_rate", "layer_norm_eps", "initializer_range", "temperature", "tau"}


def _accepts(key: str, default: Any) -> tuple[Any, str] | None:
    """(test, description) of the values option `key` accepts, from its default and name."""
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "true or false"
    if isinstance(default, int):
        low = 0 if key in _COUNTS_FROM_ZERO else 1
        return (lambda v: _is_int(v) and v >= low), f"an integer >= {low}"
    if isinstance(default, float):
        if "dropout" in key or key == "mask_ratio":
            return (lambda v: _is_number(v) and 0 <= v < 1), "a number in [0, 1)"
        if key.endswith("_ratio"):
            return (lambda v: _is_number(v) and 0 <= v <= 1), "a number in [0, 1]"
        if key in _STRICTLY_POSITIVE:
            return (lambda v: _is_number(v) and v > 0), "a finite number > 0"
        return (lambda v: _is_number(v) and v >= 0), "a finite number >= 0"
    if isinstance(default, str):
        return (lambda v: isinstance(v, str)), "text"
    return None


def check_option_value(key: str, value: Any, default: Any, where: str) -> None:
    """Raise a one-line error naming `where` when `value` is not acceptable for option `key`."""
    rule = _accepts(key, default)
    if rule is None or rule[0](value):
        return
    hint = ""
    if isinstance(value, str) and _parses_as_number(value):
        hint = f"; {value!r} was read as text, write a plain number such as 0.001"
    raise TedbenchError(f"{_prefix(where)}{key}={value!r} is not accepted ({key} takes {rule[1]}{hint})")


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _options_with_defaults(entry: ModelEntry) -> dict[str, Any]:
    """`entry`'s options with their defaults; `preset` (default `default`) where the model has presets."""
    return {**entry.defaults, **({PRESET: DEFAULT_PRESET} if entry.presets else {})}


def known_options() -> dict[str, Any]:
    """Every option of any registered model, with a default (the first model's that has it), and the options of the
    families' models with no default (any value: it is checked against the model once the model is named)."""
    _load_all()
    options: dict[str, Any] = {}
    for entry in _REGISTRY.values():
        for key, value in _options_with_defaults(entry).items():
            options.setdefault(key, value)
    for family in _FAMILIES.values():
        for key in family.option_names():
            options.setdefault(key, None)
    return options


def check_options(options: dict[str, Any], where: str, entry: ModelEntry | None = None) -> dict[str, Any]:
    """`options` unchanged when every key is an option of `entry` (of any model when None) with an acceptable value.

    An unknown key is an error with a did-you-mean; `where` names the source (a flag, a file, a profile) or is empty.
    """
    known = _options_with_defaults(entry) if entry is not None else known_options()
    for key, value in options.items():
        if key not in known:
            raise TedbenchError(f"{_prefix(where)}{_unknown_option(key, entry)}")
        check_option_value(key, value, known[key], where)
    return options


def _unknown_option(key: str, entry: ModelEntry | None) -> str:
    if entry is None:
        return f"no model has an option {key!r} ({did_you_mean(key, known_options())})"
    owners = [name for name in list_models() if key in _options_with_defaults(_REGISTRY[name])]
    hint = f"only {', '.join(owners)} have it" if owners else did_you_mean(key, _options_with_defaults(entry))
    return f"model {entry.name} has no option {key!r} ({hint})"


# The paper tunes only the learning rate, over this grid, for every model.
PAPER_LR_GRID = (5e-4, 1e-3, 5e-3)
# The same grid with 1e-4, the learning rate of the official code of DIF-SR and DLFS-Rec.
OFFICIAL_LR_GRID = (1e-4, *PAPER_LR_GRID)

_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


@dataclass(frozen=True)
class ModelFamily:
    """The models named `<prefix><Name>`, built on demand rather than registered one by one."""

    prefix: str  # e.g. "recbole:" (matched case-insensitively)
    resolve: Callable[[str], ModelEntry]  # <Name> -> its entry; a TedbenchError for a name the family lacks
    option_names: Callable[[], set[str]]  # every option of any of its models (cheap: no model is built)
    description: str  # one line for `tedbench models`, with examples

    @property
    def pattern(self) -> str:
        return f"{self.prefix}<Name>"


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(
    prefix: str, resolve: Callable[[str], ModelEntry], option_names: Callable[[], set[str]], description: str
) -> None:
    """Resolve every model name that starts with `prefix` through `resolve` (given the rest of the name)."""
    _FAMILIES[prefix.lower()] = ModelFamily(prefix, resolve, option_names, description)


def list_families(pattern: str = "*") -> list[ModelFamily]:
    """The model families whose `<prefix><Name>` matches a shell-style pattern (case-insensitive)."""
    _load_all()
    return [f for f in _FAMILIES.values() if fnmatch.fnmatch(f.pattern.lower(), pattern.lower())]


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
            raise TedbenchError(
                f"model {name}: preset {preset_name!r} is reserved, sets unknown options "
                f"({', '.join(unknown)}) or cites no source for ({', '.join(uncited)})"
            )

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
    """The entry of a registered model (names compare case-insensitively) or of a family's `<prefix><Name>`."""
    _load_all()
    if name in _REGISTRY:
        return _REGISTRY[name]
    by_lower = {n.lower(): n for n in _REGISTRY}
    if name.lower() in by_lower:
        return _REGISTRY[by_lower[name.lower()]]
    for prefix, family in _FAMILIES.items():
        if name.lower().startswith(prefix):
            return family.resolve(name[len(prefix) :])
    families = "".join(f"; or {family.pattern}" for family in _FAMILIES.values())
    raise TedbenchError(f"unknown model {name!r} ({did_you_mean(name, _REGISTRY)}){families}")


def create_model(name: str, info, overrides: dict[str, Any] | None = None):
    """Build a registered model from its defaults plus overrides and the dataset info."""
    entry = get_model(name)
    return entry.cls(entry.config(overrides), info)

"""Named presets: every baseline's `official` values, cited; how a preset resolves; search spaces that hold them."""

from __future__ import annotations

import re

import pytest

from benchmark.errors import TedbenchError
from benchmark.model import DatasetInfo
from benchmark.profiles import load_profile, load_tuning
from benchmark.registry import DEFAULT_PRESET, PRESET, create_model, get_model, list_models
from benchmark.tune import TuneSpec, _space_grid, search_space
from tests.modelkit import text_matrix

BASELINES = [name for name in list_models() if name != "TedRec" and "+" not in name]  # TedRec, plug-ins aside
WITH_PRESETS = [name for name in list_models() if get_model(name).presets]
# "owner/repo@commit path/file.ext:line[,line|-line]" (a paper section would read "§...")
CITATION = re.compile(r"^[\w.-]+/[\w.-]+@[\w.]+ [\w./-]+\.\w+:\d+([,-]\d+)*( .*)?$|§")


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_has_an_official_preset_citing_each_value(name: str) -> None:
    entry = get_model(name)
    assert "official" in entry.presets and entry.presets["official"]
    for preset, values in entry.presets.items():
        assert set(entry.preset_sources[preset]) == set(values)
        for key, source in entry.preset_sources[preset].items():
            assert CITATION.search(source), f"{name} preset {preset} option {key}: {source!r}"


@pytest.mark.parametrize("name", WITH_PRESETS)
def test_presets_resolve_and_build(name: str) -> None:
    entry = get_model(name)
    info = DatasetInfo(n_items=30, max_len=10, item_text=text_matrix(30, 12) if entry.needs_text else None)
    for preset, values in entry.presets.items():
        config = entry.config({PRESET: preset})
        assert config == {**entry.defaults, **values, PRESET: preset}
        model = create_model(
            name, info, {PRESET: preset, "pretrain_epochs": 0} if "pretrain_epochs" in config else {PRESET: preset}
        )
        assert model.config[PRESET] == preset
    assert entry.config({PRESET: DEFAULT_PRESET}) == entry.defaults  # the defaults, nothing recorded


def test_options_resolve_defaults_then_preset_then_profile_then_explicit() -> None:
    entry = get_model("DIF-SR")
    reduced = load_profile("reduced")
    config = entry.config(reduced.model_overrides(entry, {PRESET: "official", "n_layers": 3}))
    assert config[PRESET] == "official"
    assert config["n_heads"] == 8 and config["learning_rate"] == 1e-4  # the preset's
    assert config["hidden_size"] == 64 and config["attribute_hidden_size"] == 64  # the profile's, over the preset
    assert config["n_layers"] == 3  # the explicit option, over the preset
    with pytest.raises(TedbenchError, match="no preset 'offical'.*official"):
        entry.config({PRESET: "offical"})
    with pytest.raises(TedbenchError, match="no option 'preset'"):
        get_model("TedRec").config({PRESET: "official"})


@pytest.mark.parametrize("name", WITH_PRESETS)
def test_search_space_contains_every_preset(name: str) -> None:
    """Each preset (and the defaults, the paper's shared sizes) is one point of the space: the `preset`
    dimension picks it and every other searched dimension offers its value."""
    entry = get_model(name)
    space = entry.search_space
    assert space[PRESET].choices == (DEFAULT_PRESET, *entry.presets)
    for preset in space[PRESET].choices:
        config = entry.config({PRESET: preset})
        for key, param in space.items():
            if key != PRESET:
                assert config[key] in param.choices, f"{name} preset {preset}: {key}={config[key]} not searched"


@pytest.mark.parametrize("name", ["DIF-SR", "DLFS-Rec"])
def test_official_learning_rate_1e4_is_searched_where_the_official_code_uses_it(name: str) -> None:
    entry = get_model(name)
    assert entry.presets["official"]["learning_rate"] == 1e-4
    assert 1e-4 in entry.search_space["learning_rate"].choices


def test_preset_is_a_grid_dimension_of_tune() -> None:
    entry = get_model("SASRec")
    grid = _space_grid(
        entry, TuneSpec(model="SASRec", dataset="x", storage="sqlite://", grid={PRESET: ("default", "official")})
    )
    assert grid == {PRESET: ("default", "official")}


def test_authors_code_variants_use_random_text() -> None:
    for name in ("FDSA", "S3-Rec"):
        config = get_model(name).config({PRESET: "authors-code"})
        assert config["random_text"] is True and config["hidden_size"] == 300
    s3rec = get_model("S3-Rec")
    assert (s3rec.defaults["aap_weight"], s3rec.defaults["mip_weight"]) == (
        1.0,
        0.2,
    )  # RecBole 1.2.0, as the authors ran
    official = s3rec.config({PRESET: "official"})
    assert (official["aap_weight"], official["mip_weight"], official["mask_last_item"]) == (0.2, 1.0, True)


def test_profiles_declare_their_s3rec_pretraining_length() -> None:
    assert (
        get_model("S3-Rec").config(load_profile("paper").model_overrides(get_model("S3-Rec")))["pretrain_epochs"] == 300
    )
    for profile in ("reduced", "demo", "gate"):
        spec = load_profile(profile)
        assert spec.model["pretrain_epochs"] < 300 and "S3-Rec pre-trained" in spec.description


def test_preset_reaches_the_recorded_run_config() -> None:
    from benchmark.engine.run import resolve_configs
    from benchmark.engine.trainer import TrainConfig

    config, train = resolve_configs(get_model("DLFS-Rec"), {PRESET: "official"}, TrainConfig())
    assert config[PRESET] == "official" and config["n_layers"] == 4
    assert train.learning_rate == 1e-4  # the preset's learning rate drives the optimiser
    assert config["pvn_weight"] == 0.005


def test_params_yaml_declares_the_tuning_protocols() -> None:
    paper = load_tuning("paper")
    assert (paper.sampler, paper.seed, paper.dimensions("SASRec")) == ("grid", 2020, None)
    protocol = load_tuning("baselines")
    assert (protocol.sampler, protocol.n_trials, protocol.seed) == ("tpe", 30, 2020)
    assert set(protocol.search) == set(BASELINES)
    for name in BASELINES:
        entry, dims = get_model(name), protocol.dimensions(name)
        assert {"learning_rate", PRESET} <= set(dims) <= set(entry.search_space), name
        spec = TuneSpec(model=name, dataset="x", storage="sqlite://", sampler="tpe", dimensions=dims)
        assert list(search_space(entry, spec)) == list(dims)
    with pytest.raises(TedbenchError, match="declares no search for model 'TedRec'"):
        protocol.dimensions("TedRec")
    with pytest.raises(TedbenchError, match="no search dimension hidden_size"):
        search_space(
            get_model("SASRec"),
            TuneSpec(model="SASRec", dataset="x", storage="sqlite://", sampler="tpe", dimensions=("hidden_size",)),
        )

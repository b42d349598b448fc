"""The registry, overrides and their refusals."""

import pytest

from vsboost.config import (
    DATASETS,
    ConfigError,
    defaults,
    make_config,
    parse_override,
    seed_for,
)


def test_every_default_names_its_source():
    for ds in DATASETS:
        for profile in ("paper", "smoke"):
            for key, (_, source) in defaults(ds, profile).items():
                assert source.split(":")[0].split()[0] in ("paper", "lineage", "choice"), key


def test_paper_episode_sizes_come_from_the_paper():
    nk = {ds: (make_config(ds, "full").n_way, make_config(ds, "full").k_shot) for ds in DATASETS}
    assert nk == {"APY": (8, 64), "AWA2": (8, 64), "CUB": (4, 16), "FLO": (1, 32), "SUN": (64, 2)}


def test_string_overrides_are_coerced_to_the_field_type():
    cfg = make_config("CUB", "full", "smoke", {"gan_epochs": "3", "lr_gan": "1e-3",
                                                "metric_on_fake": "false"})
    assert (cfg.gan_epochs, cfg.lr_gan, cfg.metric_on_fake) == (3, 1e-3, False)


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 3}, "unknown config key 'epochs'"),
    ({"gan_epochs": "three"}, "config key 'gan_epochs': expected int, found 'three'"),
    ({"gan_epochs": -1}, "config key 'gan_epochs': expected >= 1, found -1"),
    ({"lr_gan": 0.0}, "config key 'lr_gan': expected > 0"),
    ({"sml_over": "some"}, "'sml_over': expected 'all' or 'seen'"),
])
def test_bad_override_is_refused_with_key_and_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("CUB", "full", "paper", overrides)


def test_unknown_dataset_row_and_profile_are_refused():
    with pytest.raises(ConfigError, match="unknown dataset 'AWA'"):
        make_config("AWA", "full")
    with pytest.raises(ConfigError, match="unknown row 'both'"):
        make_config("CUB", "both")
    with pytest.raises(ConfigError, match="unknown profile"):
        make_config("CUB", "full", "fast")


def test_hash_changes_with_any_value_and_rows_share_seeds():
    a = make_config("CUB", "full")
    assert a.hash() == make_config("CUB", "full").hash()
    assert a.hash() != make_config("CUB", "full", overrides={"tau": 0.2}).hash()
    assert seed_for("CUB", 0) == 3483  # lineage seed first
    assert len({seed_for("CUB", i) for i in range(5)}) == 5


def test_parse_override_needs_key_equals_value():
    assert parse_override("tau=0.2") == ("tau", "0.2")
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("tau")

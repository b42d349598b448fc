"""The registry, overrides and their refusals, run keys, training budgets."""

import re

import pytest

from vsboost import config
from vsboost.config import (
    ADDED_FIELDS,
    DATASETS,
    GENERIC,
    KEY_SCHEMA_1,
    TRAINVAL,
    ConfigError,
    budgets,
    defaults,
    epoch_steps,
    make_config,
    parse_override,
    seed_for,
    updates,
)


def test_every_default_names_its_source():
    for ds in DATASETS:
        for profile in ("paper", "smoke"):
            for key, (_, source) in defaults(ds, profile).items():
                assert source.split(":")[0].split()[0] in ("paper", "lineage", "choice"), key


LINEAGE_REPOS = ("f-CLSWGAN", "LisGAN", "CE-GZSL", "TF-VAEGAN", "FREE", "SDGZSL", "RE-GZSL")


def test_every_lineage_tag_names_a_repository_and_a_file():
    """docs/README.md promises it: a `lineage` tag says where it was read."""
    for ds in DATASETS:
        for profile in ("paper", "smoke"):
            for key, (_, source) in defaults(ds, profile).items():
                if source.startswith("lineage"):
                    assert any(repo in source for repo in LINEAGE_REPOS), (ds, key, source)
                    assert re.search(r"\w\.(py|md)\b", source), (ds, key, source)


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


def test_another_dataset_name_gets_the_generic_defaults_each_tagged_choice():
    table = defaults("AWA1", "paper")
    for key, (value, source) in GENERIC.items():
        assert table[key] == (value, source) and source.startswith("choice")
    assert make_config("AWA1", "full").gan_epochs == GENERIC["gan_epochs"][0]


def test_unknown_dataset_row_and_profile_are_refused():
    with pytest.raises(ConfigError, match="unknown dataset '../AWA'"):
        make_config("../AWA", "full")
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


# Hashes of key schema 1, computed before any field was added (choice: three rows, two profiles),
# with the values the defaults had then (they have changed since: a changed value must change the
# hash, a new field at its introduction value must not).
SCHEMA_1_HASHES = {("CUB", "full", "paper"): "b8dac419f90c",
                   ("APY", "plain", "smoke"): "b19c8a550538",
                   ("FLO", "rml", "paper"): "3c47490104c6"}
# val_protocol: runs then trained no validation split (the default is now true).
VALUES_THEN = {"CUB": {"gan_epochs": 300, "checkpoint_every": 5, "val_protocol": False},
               "APY": {"syn_num": 100, "cls_epochs": 5, "eval_every": 1, "val_protocol": False},
               "FLO": {"gan_epochs": 300, "syn_num": 600, "checkpoint_every": 5,
                       "val_protocol": False}}


@pytest.mark.parametrize("key", list(SCHEMA_1_HASHES))
def test_a_new_field_at_its_introduction_value_keeps_every_run_id(key):
    then = VALUES_THEN[key[0]]
    old = {"schema": 1}
    assert make_config(*key, overrides=then).hash(**old) == SCHEMA_1_HASHES[key]
    assert make_config(*key, overrides={**then, "tf32": True}).hash(**old) == SCHEMA_1_HASHES[key]
    assert make_config(*key, overrides={**then, "tf32": False}).hash(**old) != SCHEMA_1_HASHES[key]


# Hashes of key schema 2 (schema 1 without checkpoint_every), pinned when it was introduced with
# the values of VALUES_THEN: a later field at its introduction value must keep them too.
SCHEMA_2_HASHES = {("CUB", "full", "paper"): "f77ea7b4590f",
                   ("APY", "plain", "smoke"): "131993c05c02",
                   ("FLO", "rml", "paper"): "a5d9b4e99fad"}


@pytest.mark.parametrize("key", list(SCHEMA_2_HASHES))
def test_the_current_run_key_is_pinned_and_ignores_checkpoint_every(key):
    then = VALUES_THEN[key[0]]
    assert make_config(*key, overrides=then).hash() == SCHEMA_2_HASHES[key]
    for every in (0, 1, 7):
        changed = make_config(*key, overrides={**then, "checkpoint_every": every})
        assert changed.hash() == SCHEMA_2_HASHES[key]
        assert (changed.hash(schema=1) == SCHEMA_1_HASHES[key]) == (every == 5)
    assert make_config(*key, overrides={**then, "tau": 0.3}).hash() != SCHEMA_2_HASHES[key]


@pytest.mark.parametrize("row", ["full", "fclswgan"])
def test_adding_a_field_later_leaves_the_hash_of_existing_configs_alone(monkeypatch, row):
    old = make_config("CUB", row)
    monkeypatch.setitem(ADDED_FIELDS, "new_knob", 3)
    monkeypatch.setitem(config.HPARAMS[old.method].common, "new_knob", (3, "choice"))
    assert make_config("CUB", row).hash() == old.hash()
    assert make_config("CUB", row, overrides={"new_knob": 4}).hash() != old.hash()


def test_every_field_is_in_key_schema_1_or_registered_as_added(monkeypatch):
    fields = list(make_config("CUB", "full").to_dict())
    assert set(fields) == set(KEY_SCHEMA_1) | set(ADDED_FIELDS)
    assert not set(KEY_SCHEMA_1) & set(ADDED_FIELDS)
    monkeypatch.delitem(ADDED_FIELDS, "tf32")
    with pytest.raises(ConfigError, match="tf32"):
        make_config("CUB", "full").hash()


def test_deviations_are_the_settings_that_differ_from_the_defaults():
    assert make_config("CUB", "full").deviations() == {}
    cfg = make_config("SUN", "plain", "smoke", {"tau": 0.2, "tf32": False, "hidden": 256})
    assert cfg.deviations() == {"tau": {"value": 0.2, "default": 0.1},
                                "tf32": {"value": False, "default": True}}


def test_generator_updates_are_epochs_times_steps_per_epoch():
    apy = make_config("APY", "full")
    assert epoch_steps(apy, TRAINVAL["APY"]) == 5932 // (8 * 64) == 11
    assert updates(apy, TRAINVAL["APY"]) == apy.gan_epochs * 11
    fixed = make_config("APY", "full", overrides={"steps_per_epoch": 7, "gan_epochs": 3})
    assert updates(fixed, TRAINVAL["APY"]) == 21
    assert updates(make_config("FLO", "full"), 20) == make_config("FLO", "full").gan_epochs
    table = budgets()
    assert set(table) == set(DATASETS)
    assert table["SUN"]["epoch_steps"] == 10320 // (64 * 2)
    assert all(row["updates"] == row["gan_epochs"] * row["epoch_steps"] for row in table.values())
    assert config.budgets("smoke")["CUB"]["epoch_steps"] == 10


# ===== methods =====

def test_a_default_vsboost_config_keeps_the_run_ids_of_the_committed_demo():
    """The `method` key enters the run key only for methods other than VS-Boost: the config
    hashes of the demo made before methods were plug-ins (and before the val protocol, whose
    setting was introduced off) are still the ones made today with the val protocol off."""
    demo = {("APY", "full"): "b05444902dc8", ("AWA2", "plain"): "87a9c356015f",
            ("CUB", "sml"): "2b5ae85c530c", ("FLO", "rml"): "bcd9a7cd9519"}
    for (ds, row), chash in demo.items():
        assert make_config(ds, row, "smoke", {"val_protocol": "false"}).hash() == chash
        assert make_config(ds, row, "smoke").method == "vsboost"


def test_another_method_keys_on_its_method_and_every_setting_but_checkpoint_every():
    cfg = make_config("APY", "fclswgan", "smoke")
    assert cfg.method == "fclswgan" and cfg.hash() != make_config("APY", "plain", "smoke").hash()
    assert make_config("APY", "fclswgan", "smoke", {"cls_weight": 0.5}).hash() != cfg.hash()
    assert make_config("APY", "fclswgan", "smoke", {"checkpoint_every": 2}).hash() == cfg.hash()
    with pytest.raises(ConfigError, match="unknown config key 'tau'"):
        make_config("APY", "fclswgan", overrides={"tau": 0.2})


def test_fclswgan_defaults_name_their_source_and_share_the_final_classifier():
    for ds in DATASETS:
        for profile in ("paper", "smoke", "regress"):
            table = defaults(ds, profile, "fclswgan")
            for key, (_, source) in table.items():
                assert source.split(":")[0].split()[0] in ("paper", "lineage", "choice"), key
            vs = defaults(ds, profile)
            for key in ("cls_epochs", "cls_lr", "cls_batch", "cls_beta1", "eval_every", "dtype"):
                assert table[key] == vs[key], key


def test_rows_are_unique_across_methods_and_name_their_method():
    assert config.all_rows() == ("plain", "sml", "rml", "full", "fclswgan")
    assert config.method_of("sml") == "vsboost" and config.rows_of("fclswgan") == ("fclswgan",)
    with pytest.raises(ConfigError, match="taken"):
        config.register_hparams("copy", config.FCLSWGAN)
    with pytest.raises(ConfigError, match="unknown row 'nope'"):
        make_config("APY", "nope")

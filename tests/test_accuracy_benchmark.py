"""The accuracy benchmark's seed option: which systems it trains, and how it summarises them."""

from __future__ import annotations

import pytest

from benchmarks.accuracy import seed_summary, spamclf_systems


def test_without_seeds_each_config_runs_once_with_its_own_seed():
    systems = spamclf_systems(["default", "seed"])
    assert [(name, base) for name, base, _ in systems] == [("default", "default"), ("seed", "seed")]
    assert systems[0][2]["train"]["seed"] == 42


def test_seeds_run_each_config_once_per_seed_over_the_other_overrides():
    systems = spamclf_systems(["default"], ["train.epochs=3"], [42, 7])
    assert [name for name, _, _ in systems] == ["default seed=42", "default seed=7"]
    assert [cfg["train"]["seed"] for _, _, cfg in systems] == [42, 7]
    assert all(base == "default" and cfg["train"]["epochs"] == 3 for _, base, cfg in systems)


def _entry(config, seed, split_acc, split_fpr, cv_acc=None, cv_fpr=None):
    entry = {"config": config, "seed": seed, "split": {"accuracy": split_acc, "false_positive_rate": split_fpr}}
    if cv_acc is not None:
        entry["cv_summary"] = {"accuracy": {"mean": cv_acc}, "false_positive_rate": {"mean": cv_fpr}}
    return entry


def test_the_summary_gives_mean_min_and_max_per_config_over_its_seeds():
    systems = {
        "default seed=42": _entry("default", 42, 0.995, 0.002, 0.994, 0.004),
        "default seed=7": _entry("default", 7, 0.993, 0.004, 0.992, 0.006),
        "seed seed=42": _entry("seed", 42, 0.989, 0.008),
        "bogofilter": {"split": {"accuracy": 0.99, "false_positive_rate": 0.0036}},
    }
    summary = seed_summary(systems)
    assert set(summary) == {"default", "seed"}
    default = summary["default"]
    assert default["seeds"] == [42, 7]
    assert default["split_accuracy"] == pytest.approx({"mean": 0.994, "min": 0.993, "max": 0.995})
    assert default["cv_fpr"] == pytest.approx({"mean": 0.005, "min": 0.004, "max": 0.006})
    assert "cv_accuracy" not in summary["seed"]  # no k-fold run: no k-fold summary

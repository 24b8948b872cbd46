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


def _with_cv_errors(entry, messages, errors_by_fold):
    entry["messages"] = messages
    entry["cv"] = [{"errors": [{"path": p, "label": label, "score": score} for p, label, score in fold]} for fold in errors_by_fold]
    return entry


def test_the_summary_names_the_messages_every_seed_gets_wrong_and_the_accuracy_left_without_them():
    systems = {
        "default seed=42": _with_cv_errors(_entry("default", 42, 0.995, 0.002, 0.994, 0.004), 1000,
                                           [[("a", 0, 0.9), ("b", 1, 0.1)], [("c", 1, 0.3)]]),
        "default seed=7": _with_cv_errors(_entry("default", 7, 0.993, 0.004, 0.992, 0.006), 1000,
                                          [[("b", 1, 0.3)], [("a", 0, 0.7), ("d", 0, 0.6)]]),
    }  # fmt: skip
    errors = seed_summary(systems)["default"]["cv_errors"]
    assert errors["some_seed"] == 4  # a, b, c, d
    assert [e["path"] for e in errors["every_seed"]] == ["a", "b"]  # found in different folds: still the same message
    assert errors["every_seed"][0] == {"path": "a", "label": 0, "mean_score": pytest.approx(0.8)}
    assert errors["every_seed_count"] == {"ham": 1, "spam": 1}
    assert errors["ceiling_accuracy"] == pytest.approx(0.998)


def test_without_k_fold_runs_there_is_no_error_summary():
    summary = seed_summary({"seed seed=42": _entry("seed", 42, 0.989, 0.008), "seed seed=7": _entry("seed", 7, 0.988, 0.009)})
    assert "cv_errors" not in summary["seed"]

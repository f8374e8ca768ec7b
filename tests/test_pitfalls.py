"""The pitfall catalogue: each usual mistake, written into the tape loop, and what it does.

``explain`` runs the aligned loop and then every pitfall alone. Every pitfall must show a real,
non-zero effect, either on the setup given or on the setting its row turns on, while the aligned
loop stays bit-exact.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fitvstape.cli import cli
from fitvstape.config import resolve
from fitvstape.pitfalls import PITFALLS, Recipe, recipe
from fitvstape.runner import explain

SMALL = {"samples": 50, "epochs": 3}
SMALL_FLAGS = ["--samples", "50", "--epochs", "3"]
REPORTING_ONLY = {"unweighted-epoch-loss", "post-update-loss"}  # change the reported loss, not the weights


@pytest.fixture(scope="module")
def explanation():
    return explain(resolve(None, SMALL))


def test_the_promised_pitfalls_are_in_the_catalogue():
    assert set(PITFALLS) >= {
        "zeros-init",
        "full-batch",
        "shuffle-order",
        "unweighted-epoch-loss",
        "broadcast-shape",
        "missing-regularization",
        "post-update-loss",
        "default-learning-rate",
        "reused-optimizer-state",
        "notebook",
    }


@pytest.mark.parametrize("pitfall", PITFALLS.values(), ids=PITFALLS.keys())
def test_each_pitfall_explains_itself_and_switches_something(pitfall):
    assert pitfall.explanation and pitfall.fix and pitfall.effect
    assert "\n" not in pitfall.fix  # the fix is one line of code
    assert not recipe([pitfall.name]).aligned


def test_no_pitfall_is_the_aligned_loop():
    assert recipe([]) == Recipe() and Recipe().aligned


def test_explain_keeps_the_aligned_loop_exact(explanation):
    assert explanation.aligned.comparison.match


def test_every_pitfall_row_shows_a_non_zero_effect(explanation):
    assert {row.pitfall.name for row in explanation.rows} == set(PITFALLS)
    for row in explanation.rows:
        c = row.result.comparison
        assert c.max_abs_loss_diff > 0, row.pitfall.name
        assert row.first_differing_epoch is not None, row.pitfall.name
        if row.pitfall.name in REPORTING_ONLY:
            assert c.max_abs_weight_diff == 0, row.pitfall.name
        else:
            assert c.max_abs_weight_diff > 0, row.pitfall.name


def test_rows_are_ranked_by_effect_on_the_weights(explanation):
    effects = [row.result.comparison.max_abs_weight_diff for row in explanation.rows]
    assert effects == sorted(effects, reverse=True)


def test_a_pitfall_that_needs_a_setting_turns_it_on_and_says_so(explanation):
    rows = {row.pitfall.name: row for row in explanation.rows}
    assert rows["missing-regularization"].turned_on == {"l2": 0.01}
    assert rows["missing-regularization"].result.config.training.l2 == 0.01
    assert rows["reused-optimizer-state"].turned_on == {"momentum": 0.9}  # plain SGD has no state
    assert rows["zeros-init"].turned_on == {}


def test_explain_json_has_the_rows_and_the_aligned_baseline():
    result = CliRunner().invoke(cli, ["explain", *SMALL_FLAGS, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["aligned"]["match"] is True and doc["aligned"]["max_abs_weight_diff"] == 0
    assert {row["name"] for row in doc["pitfalls"]} == set(PITFALLS)
    for row in doc["pitfalls"]:
        assert {"name", "max_abs_weight_diff", "max_abs_loss_diff", "fix"} <= set(row)


def test_check_with_zeros_init_fails_the_gate():
    result = CliRunner().invoke(cli, ["check", *SMALL_FLAGS, "--pitfall", "zeros-init"])
    assert result.exit_code == 1
    assert result.stdout.startswith("DIFFER")


def test_run_reports_the_injected_pitfalls():
    result = CliRunner().invoke(
        cli, ["run", *SMALL_FLAGS, "--pitfall", "zeros-init", "--pitfall", "full-batch", "--format", "json"]
    )
    doc = json.loads(result.stdout)
    assert doc["pitfalls"] == ["zeros-init", "full-batch"]
    assert doc["weights"]["tape"] != doc["weights"]["fit"]


def test_unknown_pitfall_is_bad_input():
    result = CliRunner().invoke(cli, ["run", "--pitfall", "typo-init"])
    assert result.exit_code == 2
    assert "--pitfall" in result.output and "typo-init" in result.output


def test_pitfalls_command_lists_name_explanation_and_fix():
    result = CliRunner().invoke(cli, ["pitfalls", "--format", "json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)["pitfalls"]
    assert [p["name"] for p in listed] == list(PITFALLS)
    assert all(p["explanation"] and p["fix"] for p in listed)
    text = CliRunner().invoke(cli, ["pitfalls"]).stdout
    assert "zeros-init" in text and "set_weights" in text

"""The plugin's options from TRIVIA_* environment variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trivia.trainer.options import PLUGIN_FLAGS, PluginOptions


def test_the_filter_is_on_by_default_with_the_tail_from_the_prompt():
    options = PluginOptions()
    assert options.rejection.enabled
    assert options.rejection.tag_tails is None
    assert "filter ON (tag_tail): tail from each prompt's format" in options.rejection.describe()
    assert (options.failure_threshold, options.failure_patience) == (0.05, 3)
    assert options.max_no_question_share == 0.05


def test_only_an_explicit_option_turns_it_off(monkeypatch):
    monkeypatch.setenv("TRIVIA_REJECTION_SAMPLE", "false")
    rejection = PluginOptions().rejection
    assert not rejection.enabled
    assert rejection.describe().startswith("filter OFF (TRIVIA_REJECTION_SAMPLE=false)")


def test_environment_configures_the_filter(monkeypatch):
    monkeypatch.setenv("TRIVIA_REJECTION_SAMPLE", "true")
    monkeypatch.setenv("TRIVIA_REJECTION_STRATEGY", "tag_tail+prob")
    monkeypatch.setenv("TRIVIA_REJECTION_TAG_TAIL", "<nl>\\n")
    monkeypatch.setenv("TRIVIA_REJECTION_MIN_LOGPROB", "-1.5")
    monkeypatch.setenv("TRIVIA_REJECTION_OVERSAMPLE", "1.5")
    rejection = PluginOptions().rejection
    assert rejection.enabled
    assert rejection.strategy == "tag_tail+prob"
    assert rejection.tag_tails == ("<nl>\n",)
    assert (rejection.min_logprob, rejection.oversample) == (-1.5, 1.5)


def test_several_tails_as_a_json_list(monkeypatch):
    monkeypatch.setenv("TRIVIA_REJECTION_TAG_TAIL", '["</table>", "</html>"]')
    assert PluginOptions().rejection_tag_tail == ("</table>", "</html>")


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("TRIVIA_REJECTION_STRATEGY", "length")
    with pytest.raises(ValidationError):
        PluginOptions()


def test_prob_without_threshold_is_refused_when_used(monkeypatch):
    monkeypatch.setenv("TRIVIA_REJECTION_STRATEGY", "prob")
    with pytest.raises(ValueError, match="minimum mean log-probability"):
        _ = PluginOptions().rejection


def test_plugin_flags_name_the_options():
    assert {"rejection_sample", "rejection_tag_tail", "reward_url"} <= PLUGIN_FLAGS

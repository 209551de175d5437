"""The plugin's options from TRIVIA_* environment variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trivia.trainer.filtering import OTSL_TAIL
from trivia.trainer.options import PLUGIN_FLAGS, PluginOptions


def test_defaults_leave_the_filter_off():
    options = PluginOptions()
    assert not options.rejection.enabled
    assert options.rejection_tag_tail == (OTSL_TAIL,)
    assert (options.failure_threshold, options.failure_patience) == (0.05, 3)


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

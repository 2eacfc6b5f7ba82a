"""Text filters on generated modification texts."""

import pytest

from covr_datagen.filters.degenerate import DegenerateTextFilter
from covr_datagen.filters.sentiment import NegativeSentimentFilter


@pytest.fixture(scope="module")
def sentiment():
    f = NegativeSentimentFilter(min_polarity=-0.1)
    f.setup()
    return f


@pytest.mark.parametrize("text", ["Make her sad", "Make it ugly and terrible"])
def test_negative_texts_are_dropped(sentiment, text):
    drop = sentiment.check({"edit": text})
    assert drop is not None and drop.reason == "negative_sentiment"
    assert "polarity -" in drop.detail


@pytest.mark.parametrize("text", ["Change to winter", "Make her more beautiful", "Remove the dog"])
def test_neutral_and_positive_texts_are_kept(sentiment, text):
    assert sentiment.check({"edit": text}) is None


def test_threshold_is_configurable():
    strict = NegativeSentimentFilter(min_polarity=0.5)
    assert strict.check({"edit": "Change to winter"}).reason == "negative_sentiment"


@pytest.mark.parametrize("edit,reason", [
    ("", "empty_text"), ("   ", "empty_text"),
    ("Make it red\nand blue", "multiline_text"),
    ("x" * 21, "long_text"),
    ("black bear!", "text_is_caption"),
    ("Black  bird", "text_is_caption"),
])
def test_degenerate_texts_each_have_a_reason(edit, reason):
    f = DegenerateTextFilter(max_chars=20)
    drop = f.check({"edit": edit, "txt1": "Black bird", "txt2": "black bear"})
    assert drop is not None and drop.reason == reason


def test_good_text_passes_degenerate_filter():
    f = DegenerateTextFilter(max_chars=20)
    assert f.check({"edit": "Turn it into a bear", "txt1": "Black bird", "txt2": "black bear"}) is None

"""Caption- and pair-level filters, checked against the CoVR-2 paper's Appendix E.1 examples
(Ventura et al., CoVR-2, TPAMI 2024) where those are available."""

import csv

import pytest

from covr_datagen.filters.base import Drop, Filter, apply_filters
from covr_datagen.filters.digits import DigitFilter
from covr_datagen.filters.mature import MatureFilter
from covr_datagen.filters.min_words import MinWordsFilter
from covr_datagen.filters.profanity import ProfanityFilter
from covr_datagen.filters.similarity import SimilarityBandFilter
from covr_datagen.filters.templates import TemplateFilter
from covr_datagen.filters.vocabulary import OutOfVocabularyFilter
from covr_datagen.pipeline.text.normalize import normalize, one_word_difference, tokenize
from tests.helpers import WEBVID_VAL


def pair_item(c1: str, c2: str) -> dict:
    w1, w2 = tokenize(c1), tokenize(c2)
    pos = one_word_difference(w1, w2)
    assert pos is not None, (c1, c2)
    return {"txt1": c1, "txt2": c2, "word1": w1[pos], "word2": w2[pos]}


def test_paper_template_captions_are_dropped(paper_examples):
    flt = TemplateFilter()
    templates = paper_examples["filtered_pairs_appendix_E1"]["template_captions"]
    for kind, captions in templates.items():
        for caption in captions:
            drop = flt.check({"caption": caption, "normalized": normalize(caption)})
            assert drop is not None and drop.reason == "template", caption
            # the detail names the template word found (the caption may hold several)
            assert any(w in drop.detail for w in ("abstract", "background", "concept", "flag of"))


def test_template_filter_keeps_ordinary_captions():
    flt = TemplateFilter()
    for caption in ("Young woman smiling", "Aerial view of forest", "Waving flag"):
        assert flt.check({"caption": caption, "normalized": normalize(caption)}) is None


def test_paper_digit_pairs_are_dropped(paper_examples):
    flt = DigitFilter()
    for c1, c2 in paper_examples["filtered_pairs_appendix_E1"]["digit_difference"]:
        drop = flt.check(pair_item(c1, c2))
        assert drop is not None and drop.reason == "digit", (c1, c2)
    assert flt.check(pair_item("Young woman smiling", "Old woman smiling")) is None


def test_paper_oov_pairs_are_dropped(paper_examples):
    flt = OutOfVocabularyFilter()
    flt.setup()
    for c1, c2 in paper_examples["filtered_pairs_appendix_E1"]["out_of_vocabulary_difference"]:
        drop = flt.check(pair_item(c1, c2))
        assert drop is not None and drop.reason == "oov", (c1, c2)


def test_oov_keeps_the_papers_kept_pairs(paper_examples):
    flt = OutOfVocabularyFilter()
    flt.setup()
    for row in paper_examples["mtg_vs_rule_based_table_A11"]:
        w1, w2 = tokenize(row["caption1"]), tokenize(row["caption2"])
        pos = one_word_difference(w1, w2)
        if pos is None:
            continue
        assert flt.check({"word1": w1[pos], "word2": w2[pos]}) is None, row


def test_oov_rare_word_threshold():
    common = OutOfVocabularyFilter(min_zipf=2.5)
    strict = OutOfVocabularyFilter(min_zipf=8.0)
    item = {"word1": "dandelion", "word2": "rice"}
    assert common.check(item) is None
    drop = strict.check(item)
    assert drop.reason == "oov" and "rare" in drop.detail


def test_oov_unknown_dictionary_is_a_clear_error():
    flt = OutOfVocabularyFilter(dictionary="xx_NOPE")
    with pytest.raises(ValueError, match="xx_NOPE"):
        flt.setup()


def test_profanity_matches_better_profanity_exactly():
    """The indexed word set must decide exactly as better-profanity's own scan."""
    from better_profanity import Profanity

    reference = Profanity()
    reference.load_censor_words()
    fast = ProfanityFilter()
    fast.setup()
    captions = ["A cock in the farm", "Cow girl riding a horse", "b1owjob", "sh1t happens",
                "f*ck this", "hello @ss", "Young woman smiling", "Drunk man dancing", ""]
    if WEBVID_VAL.exists():
        with WEBVID_VAL.open(newline="") as fh:
            captions += [r["name"] for r in csv.DictReader(fh)][:400]
    flagged = 0
    for caption in captions:
        expected = reference.contains_profanity(caption)
        flagged += expected
        assert (fast.check({"caption": caption}) is not None) == expected, caption
    assert flagged >= 5


def test_profanity_screen_never_hides_what_better_profanity_flags():
    """Swear words disguised with the library's own character variants, case and separators,
    inside ordinary captions: the fast filter and the library agree on every one."""
    import random

    from better_profanity import Profanity

    reference = Profanity()
    reference.load_censor_words()
    fast = ProfanityFilter()
    fast.setup()
    rng = random.Random(7)
    words = sorted(str(v) for v in reference.CENSOR_WORDSET)
    variants = reference.CHARS_MAPPING
    base = ["Young woman smiling in the park", "Aerial view of the city at night", "Cat on a sofa"]
    flagged = 0
    for _ in range(600):
        word = "".join(rng.choice(variants[c]) if c in variants and rng.random() < 0.4 else c
                       for c in rng.choice(words))
        word = word.upper() if rng.random() < 0.3 else word
        word = word.replace(" ", rng.choice(["-", ", ", "  ", "."])) if rng.random() < 0.3 else word
        word = ".".join(word) if rng.random() < 0.15 else word
        parts = rng.choice(base).split()
        pos = rng.randrange(len(parts) + 1)
        caption = " ".join(parts[:pos] + [word] + parts[pos:])
        expected = reference.contains_profanity(caption)
        flagged += expected
        assert (fast.check({"caption": caption}) is not None) == expected, caption
    assert flagged > 200


def test_profanity_screen_on_words_screened_by_skeleton():
    """Swear words with too many spellings to list are screened by variant class (the bytes
    path for ASCII text, the str path otherwise); both must agree with the library."""
    import math
    import random

    from better_profanity import Profanity

    reference = Profanity()
    reference.load_censor_words()
    fast = ProfanityFilter()
    fast.setup()
    variants = reference.CHARS_MAPPING
    long_words = [str(v) for v in reference.CENSOR_WORDSET
                  if math.prod(len(variants.get(c, c)) for c in str(v).replace(" ", ""))
                  > fast._screen.MAX_SPELLINGS]
    assert long_words
    rng = random.Random(11)
    for word in long_words:
        for _ in range(20):
            spelled = "".join(rng.choice(variants[c]) if c in variants and rng.random() < 0.5
                              else c for c in word)
            spelled = spelled.replace(" ", rng.choice([" ", "-"]))
            for caption in (f"Man says {spelled} loudly", f"Café: {spelled} à la carte",
                            f"{spelled[:-1]} nearby"):
                expected = reference.contains_profanity(caption)
                assert (fast.check({"caption": caption}) is not None) == expected, caption


def test_profanity_allow_list():
    flt = ProfanityFilter(allow=["cock"])
    assert flt.check({"caption": "A cock in the farm"}) is None
    assert ProfanityFilter().check({"caption": "A cock in the farm"}).reason == "profanity"


def test_min_words_and_mature():
    assert MinWordsFilter(2).check({"normalized": "rain"}).reason == "too_few_words"
    assert MinWordsFilter(2).check({"normalized": "heavy rain"}) is None
    assert MatureFilter().check({"mature": True}).reason == "mature"
    assert MatureFilter().check({"mature": None}) is None
    assert MatureFilter().check({"mature": False}) is None


def test_similarity_band_is_inclusive_at_both_ends():
    flt = SimilarityBandFilter(0.6, 0.96)
    assert flt.check({"sim_txt": 0.96}).reason == "too_similar"
    assert flt.check({"sim_txt": 0.6}).reason == "too_different"
    assert flt.check({"sim_txt": 0.8}) is None
    with pytest.raises(ValueError):
        SimilarityBandFilter(0.9, 0.5)


def test_similarity_band_defaults_come_from_the_config_only():
    """Regression (issue 17.3): the filter had its own defaults (0.6) that disagreed with the
    config's (0.50), and an encoder fallback only a test used."""
    from covr_datagen.pipeline.config import PairFilterConfig
    from covr_datagen.pipeline.filter_sets import similarity_filter

    with pytest.raises(TypeError):
        SimilarityBandFilter()  # no defaults of its own
    cfg = PairFilterConfig()
    flt = similarity_filter(cfg)
    assert (flt.sim_min, flt.sim_max) == (cfg.sim_min, cfg.sim_max)
    with pytest.raises(RuntimeError, match="without sim_txt"):
        flt.check_batch([{"pair_id": "a-b", "txt1": "Young woman smiling",
                          "txt2": "Old woman smiling"}])


def test_apply_filters_first_drop_wins_and_later_filters_see_survivors():
    seen = []

    class Spy(Filter):
        name = "spy"

        def check(self, item):
            seen.append(item["i"])
            return None

    class DropOdd(Filter):
        name = "odd"

        def check(self, item):
            return self.drop("odd") if item["i"] % 2 else None

    items = [{"i": i} for i in range(5)]
    decisions = apply_filters([DropOdd(), Spy()], items)
    assert [d is None for d in decisions] == [True, False, True, False, True]
    assert decisions[1] == Drop("odd", "odd")
    assert seen == [0, 2, 4]

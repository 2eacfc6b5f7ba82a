from hypothesis import given
from hypothesis import strategies as st

from covr_datagen.pipeline.text.normalize import caption_id, normalize, one_word_difference, tokenize


def test_case_and_punctuation_are_ignored():
    assert tokenize("Young woman, smiling!") == ["young", "woman", "smiling"]
    assert normalize("YOUNG   woman smiling.") == normalize("young woman smiling")


def test_hyphenated_words_stay_one_word():
    assert tokenize("Close-up of a hand") == ["close-up", "of", "a", "hand"]
    assert tokenize("forget-me-nots") == ["forget-me-nots"]
    # a dash between spaces is punctuation, unicode dashes fold to '-'
    assert tokenize("sea - sunset") == ["sea", "sunset"]
    assert tokenize("close‑up") == ["close-up"]


def test_apostrophes():
    assert tokenize("Woman's hand") == ["woman's", "hand"]
    assert tokenize("Woman’s hand") == ["woman's", "hand"]  # typographic apostrophe
    assert tokenize("'90s music") == ["90s", "music"]


def test_digits_keep_decimal_and_thousand_separators_only_between_digits():
    assert tokenize("3.5 km and 10,000 people on 23.09.2015") == [
        "3.5", "km", "and", "10,000", "people", "on", "23.09.2015"]
    assert tokenize("red,blue U.S.") == ["red", "blue", "u", "s"]


def test_unicode():
    assert tokenize("Café NAÏVE") == ["café", "naïve"]
    assert tokenize("Ｆｕｌｌ width") == ["full", "width"]  # NFKC folds full-width letters
    assert tokenize("Straße") == ["strasse"]  # casefold
    assert tokenize("snake_case") == ["snake", "case"]
    assert tokenize("...") == []


def test_one_word_difference():
    a, b, c = (tokenize(s) for s in ("Young woman smiling", "Old woman smiling", "Old man smiling"))
    assert one_word_difference(a, b) == 0
    assert one_word_difference(a, c) is None
    assert one_word_difference(a, a) is None
    assert one_word_difference(a, ["woman", "smiling"]) is None


def test_caption_id_is_stable_and_distinguishes():
    assert caption_id("young woman smiling") == caption_id("young woman smiling")
    assert caption_id("young woman smiling") != caption_id("old woman smiling")
    assert len(caption_id("x")) == 16


@given(st.text(max_size=60))
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once
    assert "  " not in once and once == once.strip()


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_path_matches_the_general_rule(text):
    """ASCII captions skip NFKC and the translation tables; the words must not change."""
    import unicodedata

    from covr_datagen.pipeline.text.normalize import _APOSTROPHES, _DASHES, _WORD  # the general rule (regex)

    general = _WORD.findall(
        unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES).translate(_DASHES))
    assert tokenize(text) == general


def test_words_with_combining_marks_stay_whole():
    """Regression (issue 16.4): 'हिंदी में वीडियो' was split at every vowel sign and nasal mark
    into 'ह द म व ड य'."""
    assert normalize("हिंदी में वीडियो") == "हिंदी में वीडियो"
    assert tokenize("สวัสดี ครับ") == ["สวัสดี", "ครับ"]
    assert tokenize("مُحَمَّد، يَكْتُبُ") == ["مُحَمَّد", "يَكْتُبُ"]
    assert tokenize("Cafe\u0301 nai\u0308ve!") == ["café", "naïve"]  # NFKC composes the accents
    assert tokenize("می\u200cخواهم") == ["می\u200cخواهم"]  # a zero-width non-joiner inside a word


#: (letters, combining marks) of scripts whose words carry marks, and CJK (no marks)
SCRIPTS = {
    "devanagari": ("कखगघचजटडतदनपबमयरलवसह", "\u093e\u093f\u0940\u0941\u0947\u094b\u0902\u094d"),
    "thai": ("กขคงจฉชซดตถทนบปผพมยรลวสหอ", "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e48\u0e49\u0e4c"),
    "arabic": ("بتثجحخدذرزسشصضطظعغفقكلمنهوي", "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652"),
    "hebrew": ("אבגדהוזחטיכלמנסעפצקרשת", "\u05b0\u05b4\u05b7\u05b8\u05bc"),
    "latin": ("abcdefghijklmnopqrstuvwxyz", "\u0300\u0301\u0302\u0303\u0308\u0327"),
    "cjk": ("日本語動画中文视频한국어", ""),
}


@st.composite
def script_words(draw):
    letters, marks = SCRIPTS[draw(st.sampled_from(sorted(SCRIPTS)))]
    alphabet = letters + marks
    word = st.tuples(st.sampled_from(letters), st.text(alphabet=alphabet, max_size=8)).map("".join)
    return draw(st.lists(word, min_size=1, max_size=6))


@given(script_words(), st.lists(st.sampled_from([" ", ", ", "! ", " - ", "\u3000", " (", ") "]),
                                min_size=6, max_size=6))
def test_words_of_any_script_stay_whole(words, separators):
    """A caption made of words (a letter, then letters and combining marks) and separators
    tokenises into exactly those words, each in its NFKC case-folded form."""
    import unicodedata

    caption = "".join(w + s for w, s in zip(words, separators))
    expected = [unicodedata.normalize("NFKC", w).casefold() for w in words]
    assert tokenize(caption) == expected
    assert normalize(normalize(caption)) == normalize(caption)

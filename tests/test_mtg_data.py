"""Training data: both JSONL formats, validation with line numbers, de-duplication, built-in set."""

import json
import re

import pytest

from covr_datagen.mtg_llm.data import deduplicate, load_builtin_examples, load_jsonl, load_training_set


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_instructpix2pix_format_maps_input_output(tmp_path):
    f = _write(tmp_path / "ip2p.jsonl", [{"input": "a photo of a dog", "edit": "make it a cat",
                                          "output": "a photo of a cat"}])
    (ex,) = load_jsonl(f)
    assert (ex.caption1, ex.caption2, ex.edit) == ("a photo of a dog", "a photo of a cat",
                                                  "make it a cat")
    assert ex.source == str(f)


def test_invalid_lines_are_reported_with_their_line_numbers(tmp_path):
    f = _write(tmp_path / "bad.jsonl", [
        {"caption1": "a", "caption2": "b", "edit": "c"},
        "not json",
        {"caption1": "a", "caption2": "b"},
        {"caption1": "same", "caption2": "Same", "edit": "x"},
        {"caption1": "a", "caption2": "b", "edit": "  "},
    ])
    with pytest.raises(ValueError) as err:
        load_jsonl(f)
    msg = str(err.value)
    assert "4 invalid" in msg
    for line in (2, 3, 4, 5):
        assert f"bad.jsonl:{line}:" in msg
    assert "identical" in msg and "edit is missing or empty" in msg


def test_dedup_ignores_case_and_spacing(tmp_path):
    f = _write(tmp_path / "d.jsonl", [
        {"caption1": "Red car", "caption2": "Blue car", "edit": "Paint it blue"},
        {"caption1": "red  car", "caption2": "blue car", "edit": "paint it blue"},
        {"caption1": "Red car", "caption2": "Blue car", "edit": "Make it blue"},
    ])
    kept, dupes = deduplicate(load_jsonl(f))
    assert dupes == 1 and [e.edit for e in kept] == ["Paint it blue", "Make it blue"]


def test_training_set_merges_builtin_and_user_files(tmp_path):
    seed = load_builtin_examples()
    f = _write(tmp_path / "u.jsonl", [
        {"caption1": "Kite in the sky", "caption2": "Kites in the sky", "edit": "Add kites"},
        {"caption1": seed[0].caption1, "caption2": seed[0].caption2, "edit": seed[0].edit},
    ])
    _, builtin = load_training_set()
    examples, stats = load_training_set([f])
    assert stats["loaded"] == builtin["loaded"] + 2
    assert stats["duplicates"] == builtin["duplicates"] + 1
    assert len(examples) == stats["examples"] == len(seed) + 1
    only_user, _ = load_training_set([f], include_builtin=False)
    assert len(only_user) == 2


def test_builtin_set_is_large_clean_and_covers_the_edit_kinds():
    builtin = load_builtin_examples()
    assert len(builtin) >= 700
    assert deduplicate(builtin)[1] == 0
    edits = " ".join(e.edit.lower() for e in builtin)
    captions = " ".join(e.caption1.lower() + " " + e.caption2.lower() for e in builtin)
    for kind in (r"\badd\b", r"\bwinter\b|\bautumn\b", r"\bblue\b|\bred\b",
                 r"\bzoom\b|\bclose-up\b|\bslow motion\b", r"\bmore\b"):
        assert re.search(kind, edits), kind
    assert not re.search(r"(^| )remove ", " ".join(e.edit.lower()[:7] for e in builtin))
    assert "aerial" in captions and "timelapse" in captions

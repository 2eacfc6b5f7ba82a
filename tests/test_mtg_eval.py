"""What the MTG evaluation measures: naming the new concept, removal texts, lengths, cosine."""

import importlib.util
from pathlib import Path

import pytest

from covr_datagen.mtg_llm.concepts import is_inflection, is_removal, names_new_concept, new_words


def load_eval_script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "eval_mtg.py"
    spec = importlib.util.spec_from_file_location("eval_mtg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inflections_of_the_new_word_count_as_naming_it():
    for word, other in [("dog", "dogs"), ("dance", "dancing"), ("man", "men"), ("box", "boxes"),
                        ("city", "cities"), ("run", "running"), ("old", "older")]:
        assert is_inflection(word, other), (word, other)
    for word, other in [("water", "watermelon"), ("cat", "car"), ("dog", "horse")]:
        assert not is_inflection(word, other), (word, other)


def test_names_new_concept_reads_the_target_word():
    c1, c2 = "Black bird on a branch", "Black bear on a branch"
    assert new_words(c1, c2) == ["bear"]
    assert names_new_concept("Turn it into a bear", c1, c2)
    assert names_new_concept("Show bears instead", c1, c2)
    assert not names_new_concept("Remove bird", c1, c2)  # the rules engine's failure mode
    # not a one-word pair (Table A.4 has some): the words caption2 adds
    assert new_words("Woman in the city.", "Woman sitting in park.") == ["sitting", "park"]
    assert names_new_concept("In the park", "Woman in the city.", "Woman sitting in park.")


def test_removal_texts():
    assert is_removal("Remove the dog") and is_removal("delete it")
    assert not is_removal("Replace the dog with a horse") and not is_removal("")


def test_metrics_of_a_small_set():
    module = load_eval_script()
    from covr_datagen.pipeline.config import TextEncoderConfig
    from covr_datagen.pipeline.text.encoders import TextEncoderSpec

    rows = [{"caption1": "Dog on the beach", "caption2": "Horse on the beach",
             "edit": "Turn the dog into a horse"},
            {"caption1": "Forest in summer", "caption2": "Forest in winter",
             "edit": "Change the season to winter"}]
    encoder = TextEncoderSpec.from_config(TextEncoderConfig(dtype="float32")).load()
    got = module.metrics(rows, ["Turn the dog into a horse", "Remove summer"], encoder)
    assert got["names_concept"] == 0.5 and got["removal"] == 0.5
    assert got["mean_words"] == 4.0 and got["share_3_8_words"] == 0.5
    assert got["distinct"] == 1.0 and got["empty"] == 0
    assert 0.5 < got["cosine_to_reference"] < 1.0  # one identical text (1.0), one poor one
    same = module.metrics(rows, [r["edit"] for r in rows], encoder)
    assert same["cosine_to_reference"] == pytest.approx(1.0, abs=1e-4)


def test_reference_file_reads_the_paper_table(tmp_path, paper_examples):
    import json

    path = tmp_path / "p.json"
    path.write_text(json.dumps(paper_examples))
    rows = load_eval_script().load_references(str(path))
    assert len(rows) == 15 and set(rows[0]) == {"caption1", "caption2", "edit"}

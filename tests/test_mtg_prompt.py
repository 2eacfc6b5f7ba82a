"""Prompt format (CoVR-2 Sec. 3.1) and completion parsing."""

from covr_datagen.mtg_llm.prompt import format_example, format_prompt, parse_completion


def test_prompt_is_the_papers_format():
    assert format_prompt("Black bird", "black bear") == "Black bird\n&&\nblack bear\n\n### Response:"


def test_example_is_prompt_plus_spaced_response():
    prompt, response = format_example("Dandelion field", "Rice field", "Turn it into a rice field.")
    assert prompt + response == ("Dandelion field\n&&\nRice field\n\n### Response: "
                                 "Turn it into a rice field.")


def test_newlines_inside_captions_cannot_break_the_structure():
    assert format_prompt("a\nb", "  c  d ") == "a b\n&&\nc d\n\n### Response:"


def test_parse_first_line_and_stop_sequences():
    assert parse_completion(" Change to winter\nDog\n&&\nCat") == "Change to winter"
    assert parse_completion(" Make her run ### Response: x") == "Make her run"
    assert parse_completion("\nAdd a bridge</s>junk") == "Add a bridge"
    assert parse_completion("  Remove the dog  ") == "Remove the dog"


def test_parse_empty_completion_is_empty_string():
    assert parse_completion("") == ""
    assert parse_completion("   \n Make it red") == "Make it red"
    assert parse_completion("###") == ""

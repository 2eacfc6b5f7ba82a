"""The MTG-LLM prompt format of the CoVR-2 paper and the parsing of a completion.

Training text and inference prompt (paper, Sec. 3.1)::

    {caption1}\n&&\n{caption2}\n\n### Response: {edit}

At inference the model sees everything up to and including ``### Response:`` and completes the
edit; :func:`parse_completion` turns the raw completion into one clean line. A chat-only
endpoint (``mtg.endpoint_api: chat``) gets :func:`edit_chat_messages`: the two captions in the
paper's layout after a system message saying what to write.
"""

from __future__ import annotations

import re

SEPARATOR = "\n&&\n"
RESPONSE_MARKER = "\n\n### Response:"
#: strings that end a modification text when a model keeps going
STOP_SEQUENCES: tuple[str, ...] = ("\n", "###", "&&", "</s>", "<|endoftext|>", "<|eot_id|>")

_SPACES = re.compile(r"\s+")
#: system message of one-word edit texts sent to a chat endpoint
EDIT_SYSTEM = ("You write short modification texts for composed retrieval: given two captions "
               "separated by &&, write a few words that tell someone who sees the first how to "
               "change it into the second (e.g. 'Make it a bear'). Write only the text, on one line.")


def _clean_caption(caption: str) -> str:
    """One-line caption: newlines would break the prompt's structure."""
    return _SPACES.sub(" ", caption).strip()


def format_prompt(caption1: str, caption2: str) -> str:
    """The inference prompt for turning ``caption1`` into ``caption2`` (ends with ``### Response:``)."""
    return f"{_clean_caption(caption1)}{SEPARATOR}{_clean_caption(caption2)}{RESPONSE_MARKER}"


def edit_chat_messages(caption1: str, caption2: str) -> list[dict[str, str]]:
    """The edit prompt as OpenAI-style chat messages (system + the two captions)."""
    return [{"role": "system", "content": EDIT_SYSTEM},
            {"role": "user", "content": f"{_clean_caption(caption1)}{SEPARATOR}{_clean_caption(caption2)}"}]


def format_example(caption1: str, caption2: str, edit: str) -> tuple[str, str]:
    """A training example as ``(prompt, response)``; the loss covers the response only.

    The response starts with the space that follows ``### Response:`` in the paper's format.
    """
    return format_prompt(caption1, caption2), " " + _clean_caption(edit)


def parse_completion(completion: str, stop: tuple[str, ...] = STOP_SEQUENCES) -> str:
    """The modification text in a raw completion: cut at the first stop sequence, strip.

    A completion that starts with a newline (the model skipped the space) is handled by
    stripping leading whitespace before looking for the stop sequences. Returns ``""`` when
    nothing is left; callers treat that as a degenerate text, never as a silent success.
    """
    text = completion.lstrip()
    cut = len(text)
    for s in stop:
        idx = text.find(s)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut].strip()

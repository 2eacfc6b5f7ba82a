"""The prompt of dense modification texts (``mtg.mode: dense``) and the parsing of an answer.

A dense text describes every change from the query media to the target media in one paragraph,
as in BSE-CoVR's Dense-WebVid-CoVR (about 31 words on average), written from both captions and,
when the corpus has them, both media items' long descriptions (``--description-col``).

The prompt comes in two renderings of one content:

* chat (:func:`chat_messages`): a system message (:data:`SYSTEM`) and a user message
  (:func:`user_message`), for chat templates and ``/v1/chat/completions`` endpoints;
* plain completion (:func:`completion_prompt`): the same two texts followed by
  :data:`ANSWER_MARKER`, for base models and ``/v1/completions`` endpoints.

:func:`parse_dense` turns a raw answer into one clean line.
"""

from __future__ import annotations

import re

from covr_datagen.mtg_llm.pairs import DensePair

SYSTEM = (
    "You write modification texts for composed video retrieval. Given a query video and a target "
    "video, each with a short caption and possibly a detailed description, write one paragraph "
    "(about 20 to 40 words) that tells someone who sees the query video how to change it into "
    "the target video. Mention every difference: objects, people, actions, setting, colours, "
    "camera and mood. Do not describe what stays the same, do not mention the captions or the "
    "descriptions, and write only the modification text."
)
ANSWER_MARKER = "\n\nModification:"
#: strings that end a dense text when a model keeps going (the text itself is one paragraph)
DENSE_STOPS: tuple[str, ...] = ("\n\n", "###", "</s>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>")

_SPACES = re.compile(r"\s+")
_LABEL = re.compile(r"^(?:modification(?: text)?|answer)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d"


def _one_line(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip()


def user_message(pair: DensePair) -> str:
    """The user message: both captions, and each description the corpus has."""
    lines = [f"Query caption: {_one_line(pair.txt1)}"]
    if pair.description1:
        lines.append(f"Query description: {_one_line(pair.description1)}")
    lines.append(f"Target caption: {_one_line(pair.txt2)}")
    if pair.description2:
        lines.append(f"Target description: {_one_line(pair.description2)}")
    return "\n".join(lines)


def chat_messages(pair: DensePair) -> list[dict[str, str]]:
    """The prompt as OpenAI-style chat messages (system + user)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(pair)}]


def completion_prompt(pair: DensePair) -> str:
    """The prompt as plain text for a completion model (ends with :data:`ANSWER_MARKER`)."""
    return f"{SYSTEM}\n\n{user_message(pair)}{ANSWER_MARKER}"


def parse_dense(answer: str) -> str:
    """The dense text in a raw answer: cut at the first stop sequence (a blank line ends the
    paragraph), drop a leading ``Modification:`` label and wrapping quotes, and join the rest on
    one line. Returns ``""`` when nothing is left (a degenerate text, never a silent success)."""
    text = answer.strip()
    for stop in DENSE_STOPS:
        idx = text.find(stop)
        if idx != -1:
            text = text[:idx]
    text = _LABEL.sub("", _one_line(text))
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text

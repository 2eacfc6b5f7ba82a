"""pyarrow schemas of every table covr-datagen reads or writes: the one source of truth for
column names and types. Pipeline code refers to columns through these schemas, never by
re-typing them elsewhere.

Tables of a run directory (``covr-datagen build --out RUN``):

==================  ===========================================================================
``records/``         valid corpus rows after caption-level filters (one row per media item)
``captions/``        distinct normalised captions with the media ids that carry them
``caption_pairs/``   kept caption pairs differing by one word (up to ``mining.max_word_diff``)
``media_pairs/``     top-k media pairs per kept caption pair
``triplets/``        (query media, modification text, target media) rows, CoVR trainer columns
``profanity_review/`` distinct captions better-profanity flagged, with their review decision
``rejects/``         every dropped row: stage, reason, detail, the row as JSON
==================  ===========================================================================
"""

from __future__ import annotations

import functools

import pyarrow as pa

# --- corpus records -----------------------------------------------------------------------------
#: one valid row of the input corpus, whatever its format
RECORDS = pa.schema(
    [
        pa.field("row", pa.int64(), nullable=False),  # 0-based data row number in the input file
        pa.field("media_id", pa.string(), nullable=False),  # WebVid: "{page_dir}/{videoid}"
        pa.field("caption", pa.string(), nullable=False),  # caption as given (stripped)
        pa.field("normalized", pa.string(), nullable=False),  # see pipeline.text.normalize
        pa.field("caption_id", pa.string(), nullable=False),  # hash of `normalized`
        pa.field("url", pa.string()),  # contentUrl / url, when the corpus has one
        pa.field("path", pa.string()),  # explicit media path (--media-col), when given
        pa.field("page_dir", pa.string()),
        pa.field("videoid", pa.string()),
        pa.field("duration", pa.float64()),
        pa.field("mature", pa.bool_()),  # r18-style flag; null = unknown
        pa.field("extra", pa.string()),  # other input columns as a JSON object
        pa.field("description", pa.string()),  # long description of the media (--description-col)
    ]
)

# --- distinct captions --------------------------------------------------------------------------
CAPTIONS = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),  # first original spelling (by media id)
        pa.field("normalized", pa.string(), nullable=False),
        pa.field("num_words", pa.int32(), nullable=False),
        pa.field("media_ids", pa.list_(pa.string()), nullable=False),  # sorted
    ]
)

# --- profanity review -----------------------------------------------------------------------------
#: one distinct caption better-profanity flagged (also written as RUN/profanity_review.csv)
PROFANITY_REVIEW = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),  # spelling of its smallest media id
        pa.field("matched", pa.string(), nullable=False),  # the word(s) better-profanity censors
        pa.field("records", pa.int64(), nullable=False),  # media items carrying the caption
        pa.field("decision", pa.string(), nullable=False),  # keep | drop | "" (not reviewed)
    ]
)

# --- caption pairs ------------------------------------------------------------------------------
CAPTION_PAIRS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),  # "{caption_id1}-{caption_id2}", id1 < id2
        pa.field("caption_id1", pa.string(), nullable=False),
        pa.field("caption_id2", pa.string(), nullable=False),
        pa.field("txt1", pa.string(), nullable=False),
        pa.field("txt2", pa.string(), nullable=False),
        # the word of txt1 that differs; multi-word pairs (mining.max_word_diff > 1): the
        # tokens of txt1 substituted or deleted, in order, joined by single spaces
        pa.field("word1", pa.string(), nullable=False),
        # the word of txt2 that replaces it; multi-word pairs: txt2's substituted or inserted tokens
        pa.field("word2", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),  # token index of the (first) differing word
        pa.field("sim_txt", pa.float32()),  # text-embedding cosine; null if not computed
        pa.field("media_ids1", pa.list_(pa.string()), nullable=False),
        pa.field("media_ids2", pa.list_(pa.string()), nullable=False),
        # token changes: differing positions, or the token edit distance across lengths
        # (1 = one-word pair; null in tables written before the column existed, meaning 1)
        pa.field("word_diff", pa.int32()),
    ]
)

# --- media pairs --------------------------------------------------------------------------------
MEDIA_PAIRS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("caption_id1", pa.string(), nullable=False),
        pa.field("caption_id2", pa.string(), nullable=False),
        pa.field("txt1", pa.string(), nullable=False),
        pa.field("txt2", pa.string(), nullable=False),
        pa.field("word1", pa.string(), nullable=False),
        pa.field("word2", pa.string(), nullable=False),
        pa.field("sim_txt", pa.float32()),
        pa.field("media_id1", pa.string(), nullable=False),
        pa.field("media_id2", pa.string(), nullable=False),
        pa.field("sim_media", pa.float32()),  # visual cosine (sim_vid / sim_img); null in --no-media
        pa.field("rank", pa.int32(), nullable=False),  # 0 = most similar pair of this caption pair
        pa.field("media_kind", pa.string(), nullable=False),  # "video" | "image"
        pa.field("description1", pa.string()),  # records.description of media_id1; null if none
        pa.field("description2", pa.string()),  # records.description of media_id2; null if none
    ]
)

# --- triplets (CoVR trainer columns first) ------------------------------------------------------
TRIPLETS = pa.schema(
    [
        pa.field("pth1", pa.string(), nullable=False),  # query media id
        pa.field("pth2", pa.string(), nullable=False),  # target media id
        pa.field("edit", pa.string(), nullable=False),  # modification text
        pa.field("txt1", pa.string(), nullable=False),  # query caption
        pa.field("txt2", pa.string(), nullable=False),  # target caption
        pa.field("sim_txt", pa.float32()),
        pa.field("scores", pa.list_(pa.float32()), nullable=False),  # empty when not computed
        pa.field("triplet_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("media_kind", pa.string(), nullable=False),  # "video" | "image"
        pa.field("sim_media", pa.float32()),  # sim_vid (video) or sim_img (image)
        pa.field("word1", pa.string(), nullable=False),  # differing word in txt1
        pa.field("word2", pa.string(), nullable=False),  # differing word in txt2
        pa.field("direction", pa.string(), nullable=False),  # "forward" (1->2) | "backward" (2->1)
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("engine", pa.string(), nullable=False),  # "rules" | "hf" | "vllm"
        pa.field("model", pa.string(), nullable=False),  # base model + adapter identity, or "rules"
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("edit_dense", pa.string()),  # dense modification text (mtg.mode dense), else null
        pa.field("description1", pa.string()),  # query media's description; null if the corpus has none
        pa.field("description2", pa.string()),  # target media's description; null if the corpus has none
    ]
)

# --- rejects ------------------------------------------------------------------------------------
REJECTS = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # counted in the manifest
        pa.field("detail", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),  # row number, caption id, pair id, ...
        pa.field("record", pa.string(), nullable=False),  # the dropped row as JSON
    ]
)

# --- media embedding cache ----------------------------------------------------------------------
MEDIA_EMBEDDINGS = pa.schema(
    [
        pa.field("media_id", pa.string(), nullable=False),
        pa.field("model_key", pa.string(), nullable=False),  # identity of the encoder
        pa.field("frame_index", pa.int32()),  # decoded frame used (videos); null for images
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # L2-normalised
    ]
)

# --- per-media metadata (pipeline.corpus.metadata) -----------------------------------------------------
#: author / categories / mature flag of one media item, e.g. from the CleanVid-15M map
MEDIA_METADATA = pa.schema(
    [
        pa.field("media_id", pa.string(), nullable=False),  # the metadata file's id, as given
        pa.field("author", pa.string()),  # null = unknown
        pa.field("categories", pa.list_(pa.string())),  # null = unknown or none listed
        pa.field("r18", pa.bool_()),  # mature-content flag; null = unknown
    ]
)

# --- MTG-LLM training examples ------------------------------------------------------------------
MTG_EXAMPLES = pa.schema(
    [
        pa.field("caption1", pa.string(), nullable=False),
        pa.field("caption2", pa.string(), nullable=False),
        pa.field("edit", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # file the example came from
        pa.field("split", pa.string(), nullable=False),  # train | validation
    ]
)

ALL_TABLES: dict[str, pa.Schema] = {
    "records": RECORDS,
    "captions": CAPTIONS,
    "profanity_review": PROFANITY_REVIEW,
    "caption_pairs": CAPTION_PAIRS,
    "media_pairs": MEDIA_PAIRS,
    "triplets": TRIPLETS,
    "rejects": REJECTS,
}


def empty_row(schema: pa.Schema) -> dict:
    """A row of ``schema`` with every column set to ``None`` (lists to ``[]``)."""
    return {
        f.name: ([] if pa.types.is_list(f.type) else None) for f in schema
    }


def conform(row: dict, schema: pa.Schema) -> dict:
    """Return ``row`` restricted to ``schema``'s columns, in order, missing ones filled empty.

    Raises ``KeyError`` naming the column when a non-nullable column is missing or None.
    For many rows use :class:`Conformer` (it finds the rules once; here the schema is hashed on every call).
    """
    return Conformer(schema)(row)


class Conformer:
    """:func:`conform` for one schema, its column rules looked up once (picklable, so it can be
    handed to a Beam ``Map``)."""

    def __init__(self, schema: pa.Schema):
        self.rules = _column_rules(schema)

    def __call__(self, row: dict) -> dict:
        out = {}
        for name, is_list, nullable in self.rules:
            value = row.get(name)
            if value is None:
                if is_list:
                    value = []
                elif not nullable:
                    raise KeyError(f"column {name!r} is required by the schema but missing or null")
            out[name] = value
        return out


@functools.lru_cache(maxsize=64)
def _column_rules(schema: pa.Schema) -> tuple[tuple[str, bool, bool], ...]:
    """``(name, is_list, nullable)`` per column (computed once per schema, not once per row)."""
    return tuple((f.name, pa.types.is_list(f.type), f.nullable) for f in schema)

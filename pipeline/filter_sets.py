"""Build the ordered filter lists of each stage from the configuration (whose filter names
``pipeline.config.validate_config`` has checked against these lists)."""

from __future__ import annotations

from covr_datagen.filters.base import Filter
from covr_datagen.pipeline.config import (
    CaptionFilterConfig,
    DenseFilterConfig,
    PairFilterConfig,
    TextEncoderConfig,
)

CAPTION_FILTERS = ("min_words", "template", "profanity", "mature")
PAIR_FILTERS = ("digit", "function_word", "oov", "similarity")


def caption_filters(cfg: CaptionFilterConfig) -> list[Filter]:
    """Caption-level filters in the configured order."""
    from covr_datagen.filters.mature import MatureFilter
    from covr_datagen.filters.min_words import MinWordsFilter
    from covr_datagen.filters.profanity import ProfanityFilter, read_decisions
    from covr_datagen.filters.templates import TemplateFilter

    decisions = read_decisions(cfg.profanity_decisions) if cfg.profanity_decisions else None
    makers = {
        "min_words": lambda: MinWordsFilter(cfg.min_words),
        "template": lambda: TemplateFilter(cfg.template_words, cfg.template_phrases),
        "profanity": lambda: ProfanityFilter(allow=cfg.profanity_allow, decisions=decisions),
        "mature": lambda: MatureFilter(),
    }
    return [makers[name]() for name in cfg.enabled]


def cheap_pair_filters(cfg: PairFilterConfig) -> list[Filter]:
    """Pair-level filters that need no embeddings (run before the similarity step)."""
    from covr_datagen.filters.digits import DigitFilter
    from covr_datagen.filters.function_words import FunctionWordFilter
    from covr_datagen.filters.vocabulary import OutOfVocabularyFilter

    makers = {
        "digit": lambda: DigitFilter(),
        "function_word": lambda: FunctionWordFilter(cfg.function_words),
        "oov": lambda: OutOfVocabularyFilter(cfg.dictionary, cfg.min_zipf),
    }
    return [makers[name]() for name in cfg.enabled if name in makers]


def similarity_filter(cfg: PairFilterConfig) -> Filter | None:
    """The similarity band filter, or ``None`` when disabled."""
    from covr_datagen.filters.similarity import SimilarityBandFilter

    if "similarity" not in cfg.enabled:
        return None
    return SimilarityBandFilter(cfg.sim_min, cfg.sim_max)


def dense_text_filters(cfg: DenseFilterConfig, encoder: TextEncoderConfig) -> list[Filter]:
    """Filters on dense modification texts (``edit_dense``), cheapest first: degenerate text
    (reasons prefixed ``dense_``; a copy of a caption or description counts as a caption),
    length, repetition, then consistency with the target (embeds every text it sees)."""
    from covr_datagen.filters.degenerate import DegenerateTextFilter
    from covr_datagen.filters.dense import (
        DENSE_KEY,
        ConsistencyFilter,
        DenseLengthFilter,
        RepetitiveTextFilter,
    )
    from covr_datagen.pipeline.text.encoders import TextEncoderSpec

    return [
        DegenerateTextFilter(cfg.max_chars, key=DENSE_KEY, reason_prefix="dense_",
                             caption_keys=("txt1", "txt2", "description1", "description2")),
        DenseLengthFilter(cfg.min_words, cfg.max_words),
        RepetitiveTextFilter(cfg.ngram, cfg.max_ngram_repeats, cfg.min_distinct_ratio),
        ConsistencyFilter(TextEncoderSpec.from_config(encoder), cfg.min_consistency),
    ]

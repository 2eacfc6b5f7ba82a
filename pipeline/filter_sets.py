"""Build the ordered filter lists of each stage from the configuration (whose filter names
``pipeline.config.validate_config`` has checked against these lists)."""

from __future__ import annotations

from covr_datagen.filters.base import Filter
from covr_datagen.pipeline.config import CaptionFilterConfig, PairFilterConfig

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

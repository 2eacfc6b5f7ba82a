"""Table schemas (pyarrow) shared by every stage: see :mod:`covr_datagen.schemas.tables`."""

from covr_datagen.schemas.tables import (  # noqa: F401
    ALL_TABLES,
    CAPTION_PAIRS,
    CAPTIONS,
    MEDIA_EMBEDDINGS,
    MEDIA_METADATA,
    MEDIA_PAIRS,
    MTG_EXAMPLES,
    PROFANITY_REVIEW,
    RECORDS,
    REJECTS,
    TRIPLETS,
    Conformer,
    conform,
    empty_row,
)

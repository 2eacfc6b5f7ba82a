"""Caption-pair miners: exact (masked-key grouping) and faiss (kNN + word-difference check)."""

#: ``mining.method`` values: :mod:`pipeline.mining.exact`, :mod:`pipeline.mining.knn`, and
#: ``auto`` (:func:`resolve_method`)
METHODS = ("exact", "faiss", "auto")
#: the largest ``mining.max_word_diff`` (masked keys grow as C(L, k) per caption)
MAX_WORD_DIFF = 3
#: ``mining.method: auto`` picks faiss from this ``max_word_diff`` on (docs/BENCHMARKS.md: exact
#: mining's C(L, k) keys per caption outgrow one machine's memory at k = 3)
AUTO_FAISS_FROM = 3


def resolve_method(method: str, max_word_diff: int) -> str:
    """The miner that runs: ``method`` itself, or for ``auto`` exact below
    :data:`AUTO_FAISS_FROM` changed words and faiss from there on."""
    if method != "auto":
        return method
    return "exact" if max_word_diff < AUTO_FAISS_FROM else "faiss"

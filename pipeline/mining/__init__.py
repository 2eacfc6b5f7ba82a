"""Caption-pair miners: exact (masked-key grouping) and faiss (kNN + word-difference check)."""

#: ``mining.method`` values: :mod:`pipeline.mining.exact` and :mod:`pipeline.mining.knn`
METHODS = ("exact", "faiss")
#: the largest ``mining.max_word_diff`` (masked keys grow as C(L, k) per caption)
MAX_WORD_DIFF = 3

"""Caption-pair miners: exact (masked-key grouping) and faiss (kNN + one-word check)."""

#: ``mining.method`` values: :mod:`pipeline.mining.exact` and :mod:`pipeline.mining.knn`
METHODS = ("exact", "faiss")

"""Caption-pair miners: exact (masked-key grouping) and faiss (kNN + one-word check)."""

"""Media side of the pipeline: resolve media files, decode middle frames, embed them, cache the
embeddings, and pick the top-k media pairs of each caption pair."""

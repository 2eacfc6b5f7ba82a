"""Stage ``mine``: captions -> ``mined_pairs`` (caption pairs differing by one word, or by up to
``mining.max_word_diff`` words, across lengths with ``mining.allow_length_change``).

The method is ``mining.method``: ``exact`` (masked-key grouping, :mod:`covr_datagen.pipeline.mining.exact`)
or ``faiss`` (kNN over text embeddings, :mod:`covr_datagen.pipeline.mining.knn`). Both write the same table.
"""

from __future__ import annotations

import apache_beam as beam

from covr_datagen.pipeline.core.stage import Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.mining import METHODS
from covr_datagen.schemas import CAPTION_PAIRS


class MiningStage(Stage):
    name = "mine"
    inputs = ("captions",)
    outputs = ("mined_pairs",)
    config_sections = ("mining", "text_encoder")

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.mining
        if cfg.method == "exact":
            from covr_datagen.pipeline.mining.exact import MineExact

            captions = {"keys": ctx.read(p, "captions", label="Read captions (keys)",
                                         columns=("caption_id", "normalized")),
                        "captions": ctx.read(p, "captions")}
            pairs, rejects = captions | "MineExact" >> MineExact(
                self.name, cfg.max_group_size, cfg.num_buckets, cfg.max_word_diff,
                cfg.allow_length_change)
        elif cfg.method == "faiss":
            from covr_datagen.pipeline.mining.knn import MineKnn

            captions = ctx.read(p, "captions")
            pairs, rejects = captions | "MineKnn" >> MineKnn(
                self.name, cfg, ctx.config.text_encoder, str(ctx.staging / "_text_vectors"))
        else:
            raise ValueError(f"unknown mining.method {cfg.method!r}; use one of {METHODS}")
        pairs | "WritePairs" >> WriteTable(ctx, "mined_pairs", CAPTION_PAIRS)
        rejects | "WriteRejects" >> WriteRejects(ctx)

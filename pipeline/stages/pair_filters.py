"""Stage ``pair_filters``: mined pairs -> digit / function-word / out-of-vocabulary filters -> text similarity
-> similarity band -> ``caption_pairs``.

Similarity is computed once per distinct caption: the captions of surviving pairs are embedded
in hash buckets (encoder loaded once per worker) and written to scratch files in the staging
folder; each pair then reads its two vectors from there (:mod:`covr_datagen.pipeline.text.vectors`), so
each caption is embedded once however many pairs it is in, and no vector is shuffled. Pairs
that already carry ``sim_txt`` (the faiss miner computes it) are not re-embedded.

Counting unit: mined pairs. Drop reasons: ``digit``, ``function_word``, ``oov``, ``too_similar``,
``too_different``.
"""

from __future__ import annotations

import apache_beam as beam

from covr_datagen.pipeline.config import TextEncoderConfig
from covr_datagen.pipeline.core.accounting import ApplyFilters
from covr_datagen.pipeline.core.stage import Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.filter_sets import cheap_pair_filters, similarity_filter
from covr_datagen.pipeline.text.vectors import AttachCosine, EmbedToVectorFiles
from covr_datagen.schemas import CAPTION_PAIRS


class AttachTextSimilarity(beam.PTransform):
    """Pairs -> the same pairs with ``sim_txt`` set, each distinct caption embedded once.

    The vectors go through files in ``folder`` (:mod:`covr_datagen.pipeline.text.vectors`), not through
    shuffles: the only data moved between workers are ``(caption_id, text)`` endpoints.
    """

    def __init__(self, encoder_cfg: TextEncoderConfig, folder: str, stage: str = "pair_filters"):
        super().__init__()
        self.encoder_cfg = encoder_cfg
        self.folder = folder
        self.stage = stage

    def expand(self, pairs):
        parts = pairs | "HasSim" >> beam.Partition(
            lambda r, _: 0 if r.get("sim_txt") is not None else 1, 2)
        done, todo = parts[0], parts[1]
        summaries = (todo
                     | "Endpoints" >> beam.FlatMap(lambda r: [(r["caption_id1"], r["txt1"]),
                                                            (r["caption_id2"], r["txt2"])])
                     | "EmbedCaptions" >> EmbedToVectorFiles(self.encoder_cfg, self.folder, self.stage))
        buckets = max(1, int(self.encoder_cfg.embed_buckets))
        scored = todo | "Cosine" >> beam.ParDo(AttachCosine(self.folder, buckets),
                                               summaries=beam.pvalue.AsList(summaries))
        return (done, scored) | "AllScored" >> beam.Flatten()


class PairFilterStage(Stage):
    name = "pair_filters"
    inputs = ("mined_pairs",)
    outputs = ("caption_pairs",)
    config_sections = ("pair_filters", "text_encoder")

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.pair_filters
        pairs = ctx.read(p, "mined_pairs")
        band = similarity_filter(cfg)
        kept, rejects = pairs | "CheapFilters" >> ApplyFilters(
            self.name, cheap_pair_filters(cfg), id_key="pair_id", what="pairs",
            count_kept=band is None)
        all_rejects = [rejects]
        if band is not None:
            scored = kept | "Similarity" >> AttachTextSimilarity(
                ctx.config.text_encoder, str(ctx.staging / "_text_vectors"), self.name)
            kept, sim_rejects = scored | "BandFilter" >> ApplyFilters(
                self.name, [band], id_key="pair_id", count_input=False)
            all_rejects.append(sim_rejects)
        kept | "WritePairs" >> WriteTable(ctx, "caption_pairs", CAPTION_PAIRS)
        tuple(all_rejects) | "AllRejects" >> beam.Flatten() | "WriteRejects" >> WriteRejects(ctx)



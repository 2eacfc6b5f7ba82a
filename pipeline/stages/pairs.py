"""Stage ``pair_filters``: mined pairs -> digit / out-of-vocabulary filters -> text similarity
-> similarity band -> ``caption_pairs``.

Similarity is computed once per distinct caption: the captions of surviving pairs are embedded
in batches (encoder loaded once per worker) and joined back to the pairs by caption id
(two CoGroupByKeys), so each caption is embedded once however many pairs it is in. Pairs that
already carry ``sim_txt`` (the faiss miner computes it) are not re-embedded.

Counting unit: mined pairs. Drop reasons: ``digit``, ``oov``, ``too_similar``, ``too_different``.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from pipeline.config import TextEncoderConfig
from pipeline.filter_sets import cheap_pair_filters, similarity_filter
from pipeline.stages.base import (
    ApplyFilters,
    Stage,
    StageContext,
    WriteRejects,
    WriteTable,
    read_table,
)
from pipeline.text_encoders import EmbedKeyedTexts
from schemas import CAPTION_PAIRS


def _attach(first: bool):
    def fn(element):
        cid, grouped = element
        vecs = list(grouped["vec"])
        pairs = list(grouped["pair"])
        if pairs and not vecs:
            raise RuntimeError(f"caption {cid} of {len(pairs)} pair(s) got no embedding "
                               f"(join {'1' if first else '2'}); first pair: {pairs[0]!r:.300}")
        for pair in pairs:
            if first:
                yield pair["caption_id2"], (pair, vecs[0])
            else:
                row, v1 = pair
                row = dict(row)
                row["sim_txt"] = float(np.dot(v1, vecs[0]))
                yield row
    return fn


class AttachTextSimilarity(beam.PTransform):
    """Pairs -> the same pairs with ``sim_txt`` set (embedding each caption once)."""

    def __init__(self, encoder_cfg: TextEncoderConfig):
        super().__init__()
        self.encoder_cfg = encoder_cfg

    def expand(self, pairs):
        parts = pairs | "HasSim" >> beam.Partition(
            lambda r, _: 0 if r.get("sim_txt") is not None else 1, 2)
        done, todo = parts[0], parts[1]
        texts = (todo
                 | "Endpoints" >> beam.FlatMap(lambda r: [(r["caption_id1"], r["txt1"]),
                                                        (r["caption_id2"], r["txt2"])])
                 | "DistinctCaptions" >> beam.Distinct())
        vecs = texts | "EmbedCaptions" >> EmbedKeyedTexts(self.encoder_cfg)
        by1 = todo | "KeyBy1" >> beam.Map(lambda r: (r["caption_id1"], r))
        halves = ({"vec": vecs, "pair": by1} | "Join1" >> beam.CoGroupByKey()
                  | "Attach1" >> beam.FlatMap(_attach(True)))
        scored = ({"vec": vecs, "pair": halves} | "Join2" >> beam.CoGroupByKey()
                  | "Attach2" >> beam.FlatMap(_attach(False)))
        return (done, scored) | "AllScored" >> beam.Flatten()


class PairFilterStage(Stage):
    name = "pair_filters"
    outputs = ("caption_pairs",)
    config_sections = ("pair_filters", "text_encoder")

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.pair_filters
        pairs = read_table(p, ctx.run, "mined_pairs")
        band = similarity_filter(cfg)
        kept, rejects = pairs | "CheapFilters" >> ApplyFilters(
            self.name, cheap_pair_filters(cfg), id_key="pair_id", what="pairs",
            count_kept=band is None)
        all_rejects = [rejects]
        if band is not None:
            scored = kept | "Similarity" >> AttachTextSimilarity(ctx.config.text_encoder)
            kept, sim_rejects = scored | "BandFilter" >> ApplyFilters(
                self.name, [band], id_key="pair_id", count_input=False)
            all_rejects.append(sim_rejects)
        kept | "WritePairs" >> WriteTable(ctx, "caption_pairs", CAPTION_PAIRS)
        tuple(all_rejects) | "AllRejects" >> beam.Flatten() | "WriteRejects" >> WriteRejects(ctx)



"""Stage ``pair_filters``: mined pairs -> digit / out-of-vocabulary filters -> text similarity
-> similarity band -> ``caption_pairs``.

Similarity is computed once per distinct caption: the captions of surviving pairs are embedded
in batches (encoder loaded once per worker) and joined back to the pairs by caption id
(two CoGroupByKeys carrying only pair ids and vectors, then one by pair id for the rows), so
each caption is embedded once however many pairs it is in. Pairs that
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


def _one_vector(cid: str, grouped: dict, side: str) -> np.ndarray:
    vecs = list(grouped["vec"])
    if not vecs:
        entries = list(grouped[side])
        raise RuntimeError(f"caption {cid} of {len(entries)} pair(s) got no embedding; "
                           f"first entry: {entries[0]!r:.200}")
    return vecs[0]


def _first_vectors(element):
    """Join by caption 1: ``(pair_id, caption_id2)`` -> ``(caption_id2, (pair_id, vector 1))``."""
    cid, grouped = element
    entries = list(grouped["pair"])
    if not entries:
        return
    vec = _one_vector(cid, grouped, "pair").tobytes()
    for pair_id, cid2 in entries:
        yield cid2, (pair_id, vec)


def _similarities(element):
    """Join by caption 2: ``(pair_id, vector 1)`` -> ``(pair_id, cosine)``."""
    cid, grouped = element
    entries = list(grouped["half"])
    if not entries:
        return
    vec2 = _one_vector(cid, grouped, "half")
    for pair_id, vec1 in entries:
        yield pair_id, float(np.dot(np.frombuffer(vec1, dtype=np.float32), vec2))


def _with_similarity(element):
    """Join by pair id: the pair row with ``sim_txt`` set."""
    pair_id, grouped = element
    rows, sims = list(grouped["row"]), list(grouped["sim"])
    if len(rows) != 1 or len(sims) != 1:
        raise RuntimeError(f"pair {pair_id}: {len(rows)} row(s) and {len(sims)} similarity(ies)")
    row = dict(rows[0])
    row["sim_txt"] = sims[0]
    yield row


class AttachTextSimilarity(beam.PTransform):
    """Pairs -> the same pairs with ``sim_txt`` set (embedding each caption once).

    Only pair ids and caption-1 vectors (raw float32 bytes) travel through the two joins by
    caption id; the full pair rows are shuffled once, in the final join by pair id.
    """

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
        ids = todo | "PairIds" >> beam.Map(
            lambda r: (r["caption_id1"], (r["pair_id"], r["caption_id2"])))
        halves = ({"vec": vecs, "pair": ids} | "JoinCaption1" >> beam.CoGroupByKey()
                  | "Vector1" >> beam.FlatMap(_first_vectors))
        sims = ({"vec": vecs, "half": halves} | "JoinCaption2" >> beam.CoGroupByKey()
                | "Cosine" >> beam.FlatMap(_similarities))
        rows = todo | "KeyByPair" >> beam.Map(lambda r: (r["pair_id"], r))
        scored = ({"row": rows, "sim": sims} | "JoinSimilarity" >> beam.CoGroupByKey()
                  | "SetSimilarity" >> beam.FlatMap(_with_similarity))
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



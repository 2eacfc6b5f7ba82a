"""Held-out validation/test splits the CoVR trainer can evaluate (``export --split val=F,test=F``).

The trainer's evaluators (``src/test/blip2/*`` of github.com/lucas-ventura/CoVR) iterate over the
distinct targets in file order but look reference/target ids up by row position after sorting by
``pth2``, and its test loader asserts one row per target. So a held-out file holds **one row per
target**, sorted by ``pth2`` (the sorting is the writer's job). Held-out sets are disjoint from
training and from each other by **media** (no video of a held-out row appears in another split, in
either role) and by **caption pair**.

Procedure (:func:`plan_split`): the distinct targets are sorted and shuffled with
``numpy.random.default_rng(seed)``; each target in turn goes to the first held-out split that still
needs targets (in the order given), represented by its row with the highest ``sim_media`` (ties: the
smallest ``triplet_id``), unless that row's query, target or caption pair already belongs to another
held-out split (then the target is skipped). A split of fraction ``F`` gets ``round(F * n)`` targets
(at least one) when enough conflict-free targets exist. Training keeps every row that touches no
held-out media and no held-out caption pair; every other row is removed and counted by reason:

* ``other_rows_of_heldout_target``: more rows of a held-out target (one row per target);
* ``heldout_media``: the query or target is a media item of a held-out row;
* ``heldout_caption_pair``: the caption pair of a held-out row, with other media.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HELDOUT_SPLITS = ("val", "test")
TRAIN = "train"


def parse_split(spec: str) -> dict[str, float]:
    """``"val=0.05,test=0.05"`` -> ``{"val": 0.05, "test": 0.05}`` (a ``ValueError`` names the
    problem: unknown split, bad number, fractions outside (0, 1) or summing to 1 or more)."""
    fractions: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in HELDOUT_SPLITS:
            raise ValueError(f"--split {spec!r}: use val=F and/or test=F, e.g. val=0.05,test=0.05")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"--split {spec!r}: {value!r} is not a number") from None
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"--split {spec!r}: {name} must be in (0, 1), got {fraction}")
        fractions[name] = fraction
    if not fractions:
        raise ValueError(f"--split {spec!r}: name at least one of val=F, test=F")
    if sum(fractions.values()) >= 1.0:
        raise ValueError(f"--split {spec!r}: the held-out fractions must sum to less than 1")
    return fractions


@dataclass
class SplitPlan:
    """Which split each triplet goes to, and what keeping the splits disjoint removed."""

    #: ``{triplet_id: "train" | "val" | "test"}``; removed triplets are absent
    assignment: dict[str, str]
    #: ``{split: number of targets asked for}`` and ``{split: number found}``
    wanted: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    #: ``{reason: triplets}`` removed from every file (see the module docstring)
    removed: dict[str, int] = field(default_factory=dict)


def _representatives(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per target: highest ``sim_media`` (nulls last), then smallest ``triplet_id``."""
    ranked = rows.assign(_sim=rows["sim_media"].fillna(-np.inf))
    ranked = ranked.sort_values(["pth2", "_sim", "triplet_id"], ascending=[True, False, True])
    return ranked.drop_duplicates("pth2").set_index("pth2")


def plan_split(rows: pd.DataFrame, fractions: dict[str, float], seed: int) -> SplitPlan:
    """Split ``rows`` (columns ``triplet_id, pth1, pth2, pair_id, sim_media``) as described in
    the module docstring."""
    targets = sorted(rows["pth2"].unique())
    n = len(targets)
    wanted = {name: (max(1, int(round(f * n))) if n > 1 else 0) for name, f in fractions.items()}
    reps = _representatives(rows)
    rep_of = dict(zip(reps.index, zip(reps["triplet_id"], reps["pth1"], reps["pair_id"])))
    owner_media: dict[str, str] = {}
    owner_pair: dict[str, str] = {}
    chosen: dict[str, str] = {}
    found = {name: 0 for name in fractions}
    for index in np.random.default_rng(seed).permutation(n):
        open_splits = [s for s in fractions if found[s] < wanted[s]]
        if not open_splits:
            break
        split = open_splits[0]
        target = targets[index]
        triplet, query, pair = rep_of[target]
        if any(owner_media.get(m, split) != split for m in (query, target)) or \
                owner_pair.get(pair, split) != split:
            continue
        owner_media[query] = owner_media[target] = split
        owner_pair[pair] = split
        chosen[triplet] = split
        found[split] += 1

    is_chosen = rows["triplet_id"].isin(chosen)
    heldout_targets = set(rows.loc[is_chosen, "pth2"])
    other_row = ~is_chosen & rows["pth2"].isin(heldout_targets)
    media_hit = ~is_chosen & ~other_row & (rows["pth1"].isin(owner_media) | rows["pth2"].isin(owner_media))
    pair_hit = ~is_chosen & ~other_row & ~media_hit & rows["pair_id"].isin(owner_pair)
    train = ~(is_chosen | other_row | media_hit | pair_hit)
    assignment = dict.fromkeys(rows.loc[train, "triplet_id"], TRAIN)
    assignment.update(chosen)
    removed = {"other_rows_of_heldout_target": int(other_row.sum()),
               "heldout_media": int(media_hit.sum()), "heldout_caption_pair": int(pair_hit.sum())}
    return SplitPlan(assignment, wanted, found, removed)

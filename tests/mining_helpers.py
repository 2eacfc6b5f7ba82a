"""Test helpers for the miners: caption rows from texts, one mining run, brute-force pairs."""

from __future__ import annotations

from functools import lru_cache

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.mine import MiningStage
from covr_datagen.pipeline.text.normalize import caption_id, normalize
from covr_datagen.schemas import CAPTIONS
from tests.helpers import write_table


def caption_rows(captions: list[str]) -> list[dict]:
    """CAPTIONS rows (one per distinct normalised caption) for caption texts."""
    rows = {}
    for i, text in enumerate(captions):
        norm = normalize(text)
        cid = caption_id(norm)
        rows.setdefault(cid, {"caption_id": cid, "caption": text, "normalized": norm,
                              "num_words": len(norm.split(" ")), "media_ids": []})
        rows[cid]["media_ids"].append(f"m{i}")
    return list(rows.values())


def mine(tmp_path, rows, **mining) -> tuple[RunDir, list[dict], dict]:
    """Run the mine stage on ``rows`` with ``mining`` config values: (run, pairs, manifest)."""
    run = RunDir(tmp_path)
    write_table(run.table("captions"), rows, CAPTIONS)
    config = Config()
    for key, value in mining.items():
        setattr(config.mining, key, value)
    report = run_stages([MiningStage()], run, config, RunFacts("t"))[0]
    pairs = run.read_table("mined_pairs").to_pylist() if run.has_table("mined_pairs") else []
    return run, pairs, report.to_manifest()


def token_edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance over tokens, by plain recursion (an oracle independent of the
    pipeline's dynamic programme)."""

    @lru_cache(maxsize=None)
    def dist(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(dist(i - 1, j - 1) + (a[i - 1] != b[j - 1]), dist(i - 1, j) + 1,
                   dist(i, j - 1) + 1)

    return dist(len(a), len(b))


def is_rule_pair(words1: list[str], words2: list[str], max_diff: int,
                 allow_length_change: bool) -> bool:
    """The mining rule stated directly: equal length with 1..k differing positions (and a shared
    position unless only one differs), or different lengths within edit distance k that keep a
    token."""
    if len(words1) == len(words2):
        diff = sum(a != b for a, b in zip(words1, words2))
        return 1 <= diff <= max_diff and (diff == 1 or diff < len(words1))
    if not allow_length_change:
        return False
    dist = token_edit_distance(tuple(words1), tuple(words2))
    return dist <= max_diff and dist < max(len(words1), len(words2))


def brute_force_rule_pairs(rows: list[dict], max_diff: int,
                           allow_length_change: bool) -> set[tuple[str, str]]:
    """Every pair of caption ids (sorted) that :func:`is_rule_pair` accepts."""
    out = set()
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if is_rule_pair(a["normalized"].split(" "), b["normalized"].split(" "), max_diff,
                            allow_length_change):
                out.add(tuple(sorted((a["caption_id"], b["caption_id"]))))
    return out

"""pytest fixtures shared by the test modules (plain helpers are in ``tests/helpers.py``)."""

from __future__ import annotations

import importlib.abc
import json
import os
import shutil
import sys

import pytest

from tests.helpers import PAPER_EXAMPLES, reproducible_config


class _OnlyThroughTheNamespace(importlib.abc.MetaPathFinder):
    """From the repository root ``import pipeline`` finds the folder, but an installed package
    has only ``covr_datagen.pipeline``: refusing the bare names makes a test fail where an
    install would (e.g. ``importlib.resources.files("pipeline")``)."""

    BARE = frozenset({"pipeline", "filters", "schemas", "mtg_llm"})

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.BARE:
            raise ModuleNotFoundError(f"import covr_datagen.{fullname}, not {fullname}")
        return None


sys.meta_path.insert(0, _OnlyThroughTheNamespace())
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def paper_examples() -> dict:
    """The CoVR-2 paper examples from the optional real data (tests using it skip when absent)."""
    if not PAPER_EXAMPLES.exists():
        pytest.skip(f"{PAPER_EXAMPLES} not present (shared data is optional)")
    return json.loads(PAPER_EXAMPLES.read_text())


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo (bundled corpus copied to ``corpus.csv``, synthetic clips under ``run/media``,
    rules engine, float64 text embeddings), built once per test session."""
    from covr_datagen.pipeline.commands.demo import demo_corpus_path, run_demo

    root = tmp_path_factory.mktemp("demo_run")
    corpus = root / "corpus.csv"
    shutil.copy(demo_corpus_path(), corpus)
    config = reproducible_config()
    config.corpus.name = "corpus"
    return run_demo(root / "run", config, corpus=str(corpus))

"""pytest fixtures shared by the test modules (plain helpers are in ``tests/helpers.py``)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.helpers import PAPER_EXAMPLES, reproducible_config

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
    from pipeline.commands.demo import demo_corpus_path, run_demo

    root = tmp_path_factory.mktemp("demo_run")
    corpus = root / "corpus.csv"
    shutil.copy(demo_corpus_path(), corpus)
    config = reproducible_config()
    config.corpus.name = "corpus"
    return run_demo(root / "run", config, corpus=str(corpus))

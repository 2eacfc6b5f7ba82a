"""Evidence for the README's "Runners and scale-out": which stages funnel data through one worker.

Every stage's Beam pipeline is constructed (not run) over a real run directory and inspected for
global combines and side inputs. Allowed, each for a stated reason: the faiss miner's gather of
all captions into one index (their ids and words; the search also waits for every vector file,
through per-bucket summaries); the exact miner's sorted array of paired caption ids
(8 bytes per caption in some candidate pair, broadcast so that only those captions enter its
joins); the similarity step's per-bucket summaries (``text_encoder.embed_buckets`` small
elements: every vector file is written before pairs are scored). Everything else must be fully
keyed/parallel.
"""

from pathlib import Path

import apache_beam as beam
import pytest

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.stage import RunFacts, StageContext
from covr_datagen.pipeline.devtools.scaling import single_worker_steps
from covr_datagen.pipeline.run.build import build_stages


@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_only_the_faiss_gather_is_serial(demo_run, method, tmp_path):
    config = Config()
    config.mining.method = method
    found = {}
    for stage in build_stages(config):
        p = beam.Pipeline()
        facts = RunFacts("t", str(Path(demo_run.root).parent / "corpus.csv"))
        stage.build(p, StageContext(demo_run, tmp_path, config, facts,
                                    stage.inputs_for(config, facts)))
        found[stage.name] = [s.label for s in single_worker_steps(p)]
        # the sink bookkeeping is there, and is the only thing filtered out
        assert len(single_worker_steps(p, include_sinks=True)) >= len(found[stage.name])
    expected = {name: [] for name in found}
    expected["pair_filters"] = ["Similarity/Cosine"]
    if method == "exact":
        expected["mine"] = ["MineExact/PairedIds", "MineExact/PairedIds/InjectDefault",
                            "MineExact/KeepPaired"]
    if method == "faiss":
        expected["mine"] = ["MineKnn/Gather/Gather", "MineKnn/Gather/Gather/InjectDefault",
                            "MineKnn/Search"]
    assert found == expected

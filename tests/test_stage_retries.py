"""A stage whose counts do not add up commits nothing; it is rerun (``stage_retries``) and the
failed attempt is recorded in the manifest; with no retries left the build stops."""

import apache_beam as beam
import pytest

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.accounting import CountInput, counter
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts, Stage
from covr_datagen.pipeline.run.stage_runner import ReconciliationError, run_stages
from covr_datagen.schemas import REJECTS


class LossyStage(Stage):
    """Counts 5 items as input and 5 as kept, except that its first ``lossy`` builds lose one
    item between the two counters (what the local runner was seen doing at 2M)."""

    name = "lossy"
    outputs = ("things",)

    def __init__(self, lossy: int):
        self.lossy = lossy
        self.builds = 0

    def build(self, p, ctx):
        import pyarrow as pa

        from covr_datagen.pipeline.core.tables import WriteTable

        self.builds += 1
        lose = self.builds <= self.lossy
        schema = pa.schema([("x", pa.int64())])
        kept = (p | beam.Create(range(5)) | beam.ParDo(CountInput(self.name))
                | beam.Filter(lambda x: not (lose and x == 3))
                | beam.Map(_count_kept, self.name) | beam.Map(lambda x: {"x": x}))
        kept | WriteTable(ctx, "things", schema)
        p | "NoRejects" >> beam.Create([]) | "WriteRejects" >> WriteTable(ctx, "rejects", REJECTS)


def _count_kept(x, stage):
    counter(stage, "kept").inc()
    return x


def test_a_lost_item_is_retried_and_recorded(tmp_path):
    run = RunDir(tmp_path / "run")
    stage = LossyStage(lossy=1)
    (report,) = run_stages([stage], run, Config(), RunFacts("t"), stage_retries=1)
    assert stage.builds == 2
    assert (report.input, report.kept) == (5, 5)
    assert len(report.failed_attempts) == 1 and "input 5 != kept 4" in report.failed_attempts[0]
    entry = run.read_manifest()["stages"][0]
    assert entry["failed_attempts"] == report.failed_attempts
    assert sorted(run.read_table("things").column("x").to_pylist()) == [0, 1, 2, 3, 4]
    assert not any((run.root / ".staging").glob("lossy-*"))  # the failed attempt's files are gone


def test_without_retries_left_nothing_is_committed(tmp_path):
    run = RunDir(tmp_path / "run")
    stage = LossyStage(lossy=2)
    with pytest.raises(ReconciliationError, match="input 5 != kept 4"):
        run_stages([stage], run, Config(), RunFacts("t"), stage_retries=1)
    assert stage.builds == 2
    assert not run.has_table("things") and run.read_checkpoint("lossy") is None


def test_the_report_shows_failed_attempts():
    from covr_datagen.pipeline.products.report.page import funnel_table

    stage = {"name": "mine", "input": 5, "kept": 5, "dropped": {}, "info": {},
             "failed_attempts": ["stage 'mine': input 5 != kept 4 + dropped 0 ({})"]}
    html = funnel_table([stage])
    assert "rerun after 1 attempt(s) that did not reconcile" in html and "input 5 != kept 4" in html
    assert "rerun after" not in funnel_table([{**stage, "failed_attempts": []}])

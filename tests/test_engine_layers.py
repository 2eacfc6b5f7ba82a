"""The engine's shape (issue 17): one way to drop an item, stages declare the tables they read,
models load once per worker through one mechanism, and no module below the stages imports them."""

import ast
import pickle
from pathlib import Path

import apache_beam as beam
import pytest

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.accounting import KEPT, REJECTS_TAG, CountInput, Drops, counter
from covr_datagen.pipeline.core.models import SharedModel
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts, Stage
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.schemas import REJECTS

ROOT = Path(__file__).resolve().parents[1]
#: packages below the stage layer, and what they must not import
LOWER = ["pipeline/config.py", "pipeline/core", "pipeline/corpus", "pipeline/text",
         "pipeline/mining", "pipeline/media", "filters", "mtg_llm"]
UPPER = tuple(f"covr_datagen.pipeline.{name}" for name in ("stages", "run", "commands", "cli"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_module_below_the_stages_imports_from_them():
    offenders = []
    for folder in LOWER:
        root = ROOT / folder
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            for module in _imported_modules(path):
                if any(module == up or module.startswith(up + ".") for up in UPPER):
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


class DropSome(beam.DoFn):
    """Keeps even numbers; drops odd ones with a reject row each, and counts 10 more drops of
    another reason per element 0 as one row (like a capped hot key) and 2 as counted only."""

    def setup(self):
        self._kept = counter("dropper", KEPT)
        self._drops = Drops("dropper")

    def process(self, x):
        if x == 0:
            yield self._drops.reject(Drop("capped", "ten pairs not formed"), "key", {"x": x}, n=10)
            self._drops.count("quiet", 2)
            return
        if x % 2:
            yield self._drops.reject(Drop("odd", f"{x} is odd"), x, {"x": x})
            return
        self._kept.inc()
        yield {"x": x}


class DroppingStage(Stage):
    name = "dropper"
    outputs = ("evens",)

    def build(self, p, ctx):
        import pyarrow as pa

        from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable

        # input: 1..6 once each, plus element 0 standing for 12 items (10 capped + 2 quiet)
        items = (p | beam.Create(range(7)) | beam.ParDo(CountInput(self.name))
                 | "Twelve" >> beam.ParDo(_count_eleven_more_for_zero, self.name))
        out = items | beam.ParDo(DropSome()).with_outputs(REJECTS_TAG, main="kept")
        out.kept | WriteTable(ctx, "evens", pa.schema([("x", pa.int64())]))
        out[REJECTS_TAG] | WriteRejects(ctx)


def _count_eleven_more_for_zero(x, stage):
    if x == 0:
        counter(stage, "input").inc(11)
    yield x


def test_drops_count_each_reason_and_write_its_reject_rows(tmp_path):
    run = RunDir(tmp_path / "run")
    (report,) = run_stages([DroppingStage()], run, Config(), RunFacts("t"))
    assert (report.input, report.kept) == (18, 3)
    assert report.dropped == {"capped": 10, "odd": 3, "quiet": 2}
    rejects = run.read_table("rejects/dropper").to_pylist()
    assert sorted((r["reason"], r["item_id"]) for r in rejects) == [
        ("capped", "key"), ("odd", "1"), ("odd", "3"), ("odd", "5")]
    assert run.read_table("rejects/dropper").schema.names == REJECTS.names


class ReadsWhatItDeclares(Stage):
    name = "reader"
    inputs = ("evens",)
    outputs = ("copy",)

    def __init__(self, table: str):
        self.table = table

    def build(self, p, ctx):
        ctx.read(p, self.table)


def test_the_runner_checks_declared_inputs_and_ctx_reads_only_those(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="'reader': input table.* evens missing"):
        run_stages([ReadsWhatItDeclares("evens")], run, Config(), RunFacts("t"))
    run_stages([DroppingStage()], run, Config(), RunFacts("t"))
    with pytest.raises(ValueError, match="'records' is not among the stage's declared inputs"):
        run_stages([ReadsWhatItDeclares("records")], run, Config(), RunFacts("t"))


def test_run_facts_refuse_an_unknown_media_kind():
    with pytest.raises(ValueError, match="video or image"):
        RunFacts("t", media_kind="audio")


class CountingSpec:
    """A model spec whose loads are counted (class-level, so pickled copies share the count)."""

    loads = 0

    @property
    def identity(self) -> str:
        return "counting"

    def load(self):
        CountingSpec.loads += 1
        return CountingSpec()  # any weak-referenceable object

    def __repr__(self) -> str:
        return "CountingSpec()"


def test_a_shared_model_loads_once_per_process_for_every_copy_of_a_dofn():
    """DoFns are pickled to the workers, one copy per thread: every copy of one SharedModel
    must get the same loaded model."""
    CountingSpec.loads = 0
    model = SharedModel(CountingSpec())
    copies = [pickle.loads(pickle.dumps(model)) for _ in range(3)]
    loaded = [c.acquire() for c in [model, *copies]]
    assert CountingSpec.loads == 1
    assert all(m is loaded[0] for m in loaded)


def test_every_model_spec_names_itself_and_loads():
    from covr_datagen.mtg_llm.engines.spec import EngineSpec
    from covr_datagen.pipeline.media.encoders import MediaEncoderSpec, PixelEncoder
    from covr_datagen.pipeline.text.encoders import TextEncoderSpec

    config = Config()
    config.mtg.engine = "rules"
    media = MediaEncoderSpec.parse("pixels-8")
    assert (media.identity, media.has_text_tower) == ("pixels-8", False)
    assert isinstance(media.load(), PixelEncoder)
    assert TextEncoderSpec.from_config(config.text_encoder).identity == config.text_encoder.model
    engine = EngineSpec(config.mtg)
    assert engine.identity == "rules:rules"
    assert engine.load().generate([("a red car", "a blue car", "red", "blue")])

"""The README's error contract: bad input or options are one clear line and exit code 2, and
nothing runs; a corpus that yields (nearly) no records stops the build unless allowed."""

import json

import pytest

from covr_datagen.pipeline.cli import main as cli_main

WEBVID = "videoid,contentUrl,duration,page_dir,name\n" + "".join(
    f"{i},http://x/{i}.mp4,PT10S,p,A {color} car on a road\n"
    for i, color in enumerate(["red", "blue", "green", "white", "black"]))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "webvid.csv"
    path.write_text(WEBVID)
    return path


def build(corpus, out, *extra):
    return cli_main(["build", "--corpus", str(corpus), "--format", "webvid", "--out", str(out),
                     "--until", "read", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith(("[", "  ["))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("option,message", [
    (["--no-medai"], "unknown option --no-medai; did you mean --no-media?"),
    (["--runnr", "DirectRunner"], "did you mean --runner?"),
    (["--direct_num_workers", "two"], "invalid int value: 'two'"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_options_nobody_defines_are_refused(tmp_path, corpus, capsys, option, message):
    """Regression (issue 16.10): unknown options went to Beam, which dropped them, so
    ``--no-medai`` ran with media on."""
    assert build(corpus, tmp_path / "run", *option) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize("option,message", [
    (["--workers", "0"], "--workers: must be >= 1, got 0"),
    (["--workers", "-2"], "--workers: must be >= 1, got -2"),
    (["--stage-retries", "-1"], "--stage-retries: must be >= 0, got -1"),
])
def test_counts_out_of_range_are_refused(tmp_path, corpus, capsys, option, message):
    """Regression (issue 16.10): --workers 0 ran single-process, -2 was a Beam traceback,
    --stage-retries -1 was accepted."""
    with pytest.raises(SystemExit) as exit_:
        build(corpus, tmp_path / "run", *option)
    assert exit_.value.code == 2 and message in one_line_error(capsys)


def test_beam_options_and_unchecked_ones_after_a_bare_dash_dash_pass(tmp_path, corpus):
    assert build(corpus, tmp_path / "run", "--runner", "DirectRunner", "--direct_num_workers=1",
                 "--", "--some_runner_side_option=1") == 0


def test_bad_paths_are_one_line(tmp_path, corpus, capsys, monkeypatch):
    """Regression (issue 16.11): a directory as corpus, an unreadable corpus and an --out that
    is a file or cannot be written were tracebacks with exit 1."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(tmp_path, tmp_path / "r1", "is a directory; pass the corpus file itself"),
             (corpus, a_file, "exists and is not a folder"),
             (corpus, a_file / "run", "cannot write run directory"),
             (corpus, "/proc/covr-datagen-run", "cannot write run directory")]
    for corpus_path, out, message in cases:
        assert build(corpus_path, out) == 2
        assert message in one_line_error(capsys)
    assert a_file.read_text() == "x"

    import builtins

    import covr_datagen.pipeline.corpus.layout as readers

    def denied(path, *args, **kwargs):
        if str(path) == str(corpus):
            raise PermissionError(13, "Permission denied")
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(readers, "open", denied, raising=False)  # root reads any chmod-ed file
    assert build(corpus, tmp_path / "r2") == 2
    assert "cannot read corpus" in one_line_error(capsys)


@pytest.mark.parametrize("fmt,reason", [("jsonl", "bad_json"), ("cc3m", "bad_column_count")])
def test_a_wrong_format_stops_the_build_after_read(tmp_path, corpus, capsys, fmt, reason):
    """Regression (issue 16.11): a WebVid CSV read as jsonl or cc3m gave 0 records, exit 0."""
    out = tmp_path / "run"
    rc = cli_main(["build", "--corpus", str(corpus), "--format", fmt, "--out", str(out),
                   "--until", "caption_filters"])
    line = one_line_error(capsys)
    assert rc == 2 and f"kept 0 of 6 records (rejected: {reason} 6)" in line
    assert "--allow-empty" in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["read"] and not manifest["complete"]
    assert cli_main(["build", "--corpus", str(corpus), "--format", fmt, "--out", str(out),
                     "--until", "caption_filters", "--allow-empty"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["read", "caption_filters"]


def test_nearly_empty_reads_are_refused_and_small_losses_are_not():
    from covr_datagen.pipeline.run.stage_runner import StageReport
    from covr_datagen.pipeline.stages.read import refuse_empty_read

    def report(kept, dropped, name="read"):
        return StageReport(name, kept + dropped, kept, {"bad_json": dropped} if dropped else {},
                           1.0, "k")

    for refused in (report(0, 0), report(0, 10), report(4, 96)):
        with pytest.raises(ValueError, match="--allow-empty"):
            refuse_empty_read(refused)
    for accepted in (report(5, 95), report(90, 10), report(0, 10, name="caption_filters")):
        refuse_empty_read(accepted)

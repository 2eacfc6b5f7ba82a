"""Config validation: every value is checked (type, range, choices) before any stage runs."""

import pytest
import yaml

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.config import Config, load_config, validate_config
from covr_datagen.pipeline.run.build import BuildRequest, run_build


def test_the_defaults_and_the_printed_config_are_valid(tmp_path, capsys):
    validate_config(Config())
    assert cli_main(["config"]) == 0
    path = tmp_path / "c.yaml"
    path.write_text(capsys.readouterr().out)
    assert load_config(path) == Config()


@pytest.mark.parametrize("yaml_text,message", [
    ("media:\n  enabled: 'false'\n", "media.enabled must be true or false, got 'false'"),
    ("pair_filters:\n  sim_min: '0.5'\n", "pair_filters.sim_min must be a number"),
    ("pair_filters:\n  sim_min: 0.9\n  sim_max: 0.8\n", "sim_min (0.9) must be below"),
    ("pair_filters:\n  sim_max: 1.5\n", "sim_max must be between -1 and 1"),
    ("mining:\n  k: 0\n", "mining.k must be >= 1, got 0"),
    ("mining:\n  max_group_size: 10.5\n", "mining.max_group_size must be an integer"),
    ("mining:\n  method: fast\n", "mining.method: 'fast' is not one of exact, faiss"),
    ("caption_filters:\n  enabled: [min_words, tempate]\n", "'tempate' is not one of"),
    ("caption_filters:\n  template_words: abstract\n", "must be a list of (a string)"),
    ("corpus:\n  max_record_lines: 0\n", "corpus.max_record_lines must be >= 1"),
    ("media:\n  frame: first\n", "media.frame: 'first' is not one of middle, keyframe"),
    ("mtg:\n  temperature: 0\n", "mtg.temperature must be > 0"),
    ("text_encoder:\n  dtype: float8\n", "text_encoder.dtype: 'float8' is not one of"),
])
def test_bad_values_are_refused_before_any_stage_runs(tmp_path, capsys, yaml_text, message):
    """Regression (issue 16.9): 'false' meant enabled, a string sim_min failed three stages in,
    range checks fired only when their stage started."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    corpus = tmp_path / "c.csv"
    corpus.write_text("videoid,page_dir,name\n1,p,A red car\n")
    out = tmp_path / "run"
    rc = cli_main(["build", "--corpus", str(corpus), "--format", "webvid", "--out", str(out),
                   "--config", str(config)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (out / "manifest.json").exists()


def test_a_config_changed_in_code_is_validated_by_build(tmp_path):
    config = Config()
    config.media.enabled = "false"
    corpus = tmp_path / "c.csv"
    corpus.write_text("videoid,page_dir,name\n1,p,A red car\n")
    with pytest.raises(ValueError, match="media.enabled"):
        run_build(BuildRequest(str(corpus), str(tmp_path / "run")), config)
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_malformed_yaml_is_one_line_with_its_position(tmp_path, capsys):
    """Regression (issue 16.11): a YAML syntax error was a traceback with exit 1."""
    path = tmp_path / "bad.yaml"
    path.write_text("mining:\n  k: [1\n")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(path.read_text())
    assert cli_main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not valid YAML" in err and "line 3" in err and len(err.strip().splitlines()) == 1

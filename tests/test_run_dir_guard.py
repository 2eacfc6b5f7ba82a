"""Issue #16 items 6 and 7: one writer per run directory (an flock the OS drops when its holder
dies) and an ``--out`` that is not one of our run directories is never written into or
emptied, ``--force`` or not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.commands.demo import demo_corpus_path
from covr_datagen.pipeline.core.rundir import LOCK_FILE, MARKER_FILE, RunDir, RunDirBusy

ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys
from covr_datagen.pipeline.core.rundir import RunDir
with RunDir(sys.argv[1]).lock(shared=sys.argv[2] == "shared"):
    print("held", flush=True)
    sys.stdin.read()
"""


class LockHolder:
    """Another process holding a run directory's lock until closed (or killed)."""

    def __init__(self, root: Path, shared: bool = False):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(root), "shared" if shared else "exclusive"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def _another_process_can_lock(root: Path) -> bool:
    code = ("import sys\nfrom covr_datagen.pipeline.core.rundir import RunDir, RunDirBusy\ntry:\n"
            "    with RunDir(sys.argv[1]).lock():\n        pass\nexcept RunDirBusy:\n"
            "    sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rc = subprocess.run([sys.executable, "-c", code, str(root)], env=env, timeout=60).returncode
    assert rc in (0, 3)
    return rc == 0


def _build(out: Path, *extra: str) -> int:
    return cli_main(["build", "--corpus", demo_corpus_path(), "--format", "webvid", "--out",
                     str(out), "--until", "read", *extra])


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in "\n".join(lines), lines
    return errors[0]


def test_a_second_build_into_a_locked_run_gets_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "run"
    holder = LockHolder(out)
    try:
        assert _build(out) == 2
        line = _one_error_line(capsys)
        assert "in use by another covr-datagen process" in line
        assert f"pid {holder.proc.pid}" in line
        assert not (out / "manifest.json").exists()
    finally:
        holder.release()
    assert _build(out) == 0
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_a_killed_writer_leaves_no_lock_that_blocks_a_resume(tmp_path):
    out = tmp_path / "run"
    assert _build(out) == 0
    holder = LockHolder(out)
    holder.kill()
    assert (out / LOCK_FILE).read_text().strip() == str(holder.proc.pid)  # stale pid, no lock
    assert _build(out) == 0


def test_readers_share_and_writers_exclude(tmp_path, capsys):
    out = tmp_path / "run"
    assert _build(out) == 0
    reader = LockHolder(out, shared=True)
    try:
        with RunDir(out).lock(shared=True):  # a second reader is fine
            pass
        with pytest.raises(RunDirBusy):
            with RunDir(out).lock():
                pass
        assert _build(out, "--force") == 2
        assert "in use by another covr-datagen process" in _one_error_line(capsys)
    finally:
        reader.release()
    writer = LockHolder(out)
    try:
        for argv in (["report", "--run", str(out)],
                     ["export", "--run", str(out), "--out", str(tmp_path / "x.csv")]):
            assert cli_main(argv) == 2
            assert "in use by another covr-datagen process" in _one_error_line(capsys)
    finally:
        writer.release()


def test_locks_are_reentrant_in_one_process(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        with run.lock(), run.lock(shared=True):
            pass
        assert not _another_process_can_lock(run.root)  # still held after the nested exits
    assert _another_process_can_lock(run.root)


@pytest.mark.parametrize("force", [False, True])
def test_an_out_folder_that_is_not_a_run_directory_is_refused(tmp_path, capsys, force):
    """The issue's case: ``--out`` at a user's folder that happens to hold ``records/`` and
    ``rejects/read/``; before the fix the build deleted both files."""
    out = tmp_path / "mine"
    files = {out / "records" / "important.txt": "keep me", out / "rejects/read/notes.txt": "mine"}
    for path, text in files.items():
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert _build(out, *(["--force"] if force else [])) == 2
    line = _one_error_line(capsys)
    assert "not a covr-datagen run directory" in line and "records" in line
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # not even a lock file
    assert all(path.read_text(encoding="utf-8") == text for path, text in files.items())


def test_an_empty_folder_or_a_run_written_before_the_marker_is_accepted(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _build(empty) == 0
    assert (empty / MARKER_FILE).is_file()
    legacy = tmp_path / "legacy"
    assert _build(legacy) == 0
    (legacy / MARKER_FILE).unlink()  # as written by a version without the marker
    assert RunDir(legacy).is_run_dir()
    assert _build(legacy, "--force") == 0
    assert (legacy / MARKER_FILE).is_file()


def test_a_commit_never_deletes_a_file_it_did_not_write(tmp_path, capsys):
    """Inside one of our run directories, a user's file in a table folder stops a forced
    rebuild of that table (one line, exit 2) instead of being deleted with the old table."""
    out = tmp_path / "run"
    assert _build(out) == 0
    note = out / "records" / "notes.txt"
    note.write_text("mine", encoding="utf-8")
    assert _build(out, "--force") == 2
    assert "did not write" in _one_error_line(capsys)
    assert note.read_text(encoding="utf-8") == "mine"
    assert RunDir(out).has_table("records")


def test_a_commit_leaves_no_beam_temp_folders(tmp_path):
    """A write retried after a lost worker leaves ``beam-temp-*`` folders in the staged table;
    they must not be committed (a later forced rebuild would take them for a user's files)."""
    run = RunDir(tmp_path / "run")
    staging = run.new_staging("read")
    temp = staging / "records" / "beam-temp-part-0123"
    temp.mkdir(parents=True)
    (temp / "half-written").write_bytes(b"x")
    (staging / "records" / "part-0.parquet").write_bytes(b"")
    run.commit("read", staging, ["records"], {"key": "k"})
    assert [p.name for p in run.table("records").iterdir()] == ["part-0.parquet"]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("x", encoding="utf-8")
    assert _build(out) == 2
    assert "not a folder" in _one_error_line(capsys)
    assert out.read_text(encoding="utf-8") == "x"


def test_media_links_replace_links_but_never_a_users_file(tmp_path):
    """Audit of every deletion: ``export --link-media`` replaced whatever was at a link's path."""
    from covr_datagen.pipeline.products.trainer_ids import link_media

    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    dest = tmp_path / "links"
    assert link_media({"1": str(source)}, dest, "video")["linked"] == 1
    assert link_media({"1": str(source)}, dest, "video")["linked"] == 1  # its own link: replaced
    (dest / "2.mp4").write_bytes(b"mine")
    with pytest.raises(ValueError, match="not a media link covr-datagen made"):
        link_media({"2": str(source)}, dest, "video")
    assert (dest / "2.mp4").read_bytes() == b"mine"

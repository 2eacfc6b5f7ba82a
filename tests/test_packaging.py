"""The install namespace: the repository's top-level folders install as ``covr_datagen.*`` only."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_FOLDERS = ("pipeline", "mtg_llm", "filters", "schemas")


def test_every_package_folder_is_installed_under_the_namespace():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {f"covr_datagen.{top}": top for top in TOP_FOLDERS}
    on_disk = {"covr_datagen." + str(init.parent.relative_to(ROOT)).replace("/", ".")
               for top in TOP_FOLDERS for init in (ROOT / top).rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk  # a new sub-package must be listed to ship


def test_no_code_imports_the_bare_folder_names():
    """``import pipeline`` would work from the repository root (a second copy of every module)
    but not from an installed package: everything imports through ``covr_datagen``."""
    offenders = []
    for path in sorted(ROOT.glob("**/*.py")):
        if ".venv" in path.parts or path.relative_to(ROOT).parts[0] not in (*TOP_FOLDERS, "tests",
                                                                              "scripts", "dags"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names
                          if name and name.split(".")[0] in TOP_FOLDERS]
    assert offenders == []

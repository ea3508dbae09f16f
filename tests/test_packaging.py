"""The built wheel: every data file inside, and evalkit working from it (not from the source tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO


def _source_files() -> list[str]:
    """The files a checkout holds (what git tracks, or the tree without caches when there is no git)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", ".ci-venv", "build", "dist", "__pycache__", ".evalkit"}
        return [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(REPO).parts) and p.suffix != ".pyc"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a clean copy of the checkout, as `pip install` of a source tree or sdist builds it."""
    src = tmp_path_factory.mktemp("src")
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("evalkit-*.whl")
    return built


@pytest.mark.integration
def test_the_wheel_holds_every_data_file(wheel: Path) -> None:
    expected = {name for name in _source_files()
                if name.startswith("evalkit/") and not name.endswith(".py")}
    assert "evalkit/data/models.yaml" in expected  # was missing from the wheel: `evalkit lint` died
    assert {"evalkit/schemas/suite.schema.json", "evalkit/templates/prompt-pr.yml", "evalkit/py.typed"} <= expected
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert sorted(expected - names) == []
    assert "License-Expression: Apache-2.0" in metadata


@pytest.mark.integration
def test_lint_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """`evalkit lint` from the wheel installed into a fresh environment: was ModuleNotFoundError (evalkit.data)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this environment's site-packages, added as a plain path: its .pth files (the
    # editable install of the source tree among them) are not processed, so only the wheel provides evalkit.
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "repo"
    for name in ("prompts", "suites"):
        shutil.copytree(REPO / name, work / name)
    shutil.copy2(REPO / "evalkit.yaml", work / "evalkit.yaml")
    where = subprocess.run([python, "-c", "import evalkit; print(evalkit.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(site)
    done = subprocess.run([env / "bin" / "evalkit", "lint"], cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

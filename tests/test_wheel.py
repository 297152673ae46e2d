"""The package as a practice's IT installs it: a wheel (pip, pipx), not a checkout.

The wheel is built the standard way (``python -m build``: an sdist first, then the wheel from that
sdist), so a file the sdist or the wheel forgets makes these tests fail. The installed copy runs
in its own virtual environment from a folder outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content" / "nl"
PACKAGED = "bot/_content/nl"  # where bot.content finds the Dutch content inside an installed wheel
# Not copied to the build: git, caches, old build output, and anything private (.env, databases).
LEFT_BEHIND = (".git", "*.egg-info", "build", "dist", "__pycache__", ".*cache", ".hypothesis")
PRIVATE = (".env", "*.sqlite3*", "test-artifacts")


def _left_behind(folder: str, names: list[str]) -> set[str]:
    skipped = shutil.ignore_patterns(*LEFT_BEHIND, *PRIVATE)(folder, names)
    return skipped | ({"data"} if Path(folder) == ROOT else set())  # DATABASE_PATH's default folder


def runtime_files() -> list[str]:
    """Everything the bot reads at run time: the content and every file of its packages."""
    content = [
        f"{PACKAGED}/{p.relative_to(CONTENT).as_posix()}"
        for p in sorted(CONTENT.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    ]
    # Every file in the packages, code or data (migrations, signal rules, web files): a new data
    # file needs its line in pyproject's package-data.
    code = [
        p.relative_to(ROOT).as_posix()
        for package in ("bot", "scheduler")
        for p in sorted((ROOT / package).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and not p.name.startswith(".")
    ]
    return [*content, *code]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A clean copy: setuptools reuses an old *.egg-info/SOURCES.txt and build/ of the checkout,
    # which would hide a file the sdist forgets.
    source = tmp_path_factory.mktemp("source") / "voorgesprek"
    shutil.copytree(ROOT, source, ignore=_left_behind)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("voorgesprek-*.whl")
    return found


def test_the_wheel_holds_every_file_the_bot_reads(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(metadata).decode("utf-8"))
        (licence,) = (n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        licence_text = zf.read(licence).decode("utf-8")
    missing = [f for f in runtime_files() if f not in names]
    assert not missing, missing
    for needed in (
        *(
            f"{PACKAGED}/{name}"
            for name in ("messages.yaml", "lexicon/safety_model.json", "templates/web/base.html.j2")
        ),
        "bot/storage/migrations/0001_initial.sql",
        "bot/services/signal_rules.yaml",
        "bot/web/static/app.css",
    ):
        assert needed in runtime_files()  # the folders were really read
    assert not [n for n in names if n.startswith(("tests/", "content/"))]  # no stray top-level folders
    assert meta["License-Expression"] == "EUPL-1.2"
    assert licence_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence_text.startswith(" " * 22 + "EUROPEAN UNION PUBLIC LICENCE v. 1.2")
    assert "'Compatible Licences' according to Article 5 EUPL are:" in licence_text  # the Appendix


def test_the_sdist_holds_the_content_folder_where_it_is_in_the_repository(dist: Path) -> None:
    (sdist,) = dist.glob("voorgesprek-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert "content/nl/messages.yaml" in names and "LICENSE" in names
    assert not [n for n in names if n.startswith("bot/_content")]  # only the build puts it there


def _clean_env(venv: Path) -> dict[str, str]:
    """No PYTHONPATH and none of the bot's own settings from the surroundings (CONTENT_DIR, ...)."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in ours and k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    place = tmp_path_factory.mktemp("practice")
    assert ROOT not in place.parents
    venv = place / "venv"
    # The heavy dependencies (spaCy, ...) come from this Python's site-packages; the bot itself
    # only from the wheel.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    env = _clean_env(venv)
    install = subprocess.run(
        [
            str(python),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-index", "--force-reinstall", str(wheel)),
        ],
        capture_output=True,
        text=True,
        cwd=place,
        env=env,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*args], capture_output=True, text=True, cwd=place, env=env, timeout=300, check=False
        )

    where = run(
        str(python), "-c", "import bot, bot.content as c; print(bot.__file__); print(c.DEFAULT_CONTENT_DIR)"
    )
    assert where.returncode == 0, where.stderr
    bot_file, content_dir = (Path(line) for line in where.stdout.splitlines())
    assert venv in bot_file.parents and ROOT not in bot_file.parents
    assert venv in content_dir.parents, content_dir

    for command in ([str(python), "-m", "bot", "--help"], [str(venv / "bin" / "voorgesprek"), "--help"]):
        done = run(*command)
        assert done.returncode == 0, done.stderr
        assert "demo" in done.stdout

    answers = content_dir / "examples" / "demo_answers.yaml"
    demo = run(str(python), "-m", "bot", "demo", "--answers", str(answers), "--db", str(place / "d.sqlite3"))
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    agenda = demo.stdout.split("The agenda as the POH receives it:")[1]
    assert "Status: klaar" in agenda and "Lichaamsfuncties: 4" in agenda
    assert "Traceback" not in demo.stdout + demo.stderr

"""``requirements.lock`` (pinned, hashed runtime dependencies) keeps up with ``pyproject.toml``.

Regenerate it as the README says (``uv pip compile ... --generate-hashes``) after changing the
dependencies; this test fails when someone forgets.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def locked() -> dict[str, str]:
    """name -> pinned version; every pin must carry at least one sha256 hash."""
    lines = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    pins: dict[str, str] = {}
    for i, line in enumerate(lines):
        if match := PIN.match(line):
            assert lines[i + 1].strip().startswith("--hash=sha256:"), line
            pins[canonicalize_name(match[1])] = match[2]
        else:
            assert not line or line.startswith((" ", "#")), f"unpinned line in requirements.lock: {line}"
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: regenerate it (README)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {spec}"


def test_the_lock_holds_no_test_tools_and_not_the_bot_itself() -> None:
    pins = locked()
    for name in ("pytest", "selenium", "ruff", "mypy", "hypothesis", "voorgesprek"):
        assert name not in pins

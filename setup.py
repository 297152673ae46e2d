"""One build step on top of pyproject.toml: the Dutch content goes into the wheel.

The content stays at the top of the repository (``content/nl``, where the POH and translators edit
it). A built wheel carries a copy as ``bot/_content/nl``, where ``bot.content`` finds it with
importlib.resources. An editable install (``pip install -e .``) copies nothing: it reads the
checkout's ``content/nl``. The sdist carries ``content/`` (MANIFEST.in), so a wheel built from the
sdist gets the same copy.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONTENT = Path("content")
PACKAGED = Path("bot") / "_content"


class BuildWithContent(build_py):
    """``build_py`` plus a copy of ``content/`` into ``bot/_content/`` in the build folder."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for source in sorted(CONTENT.rglob("*")):
            if not source.is_file() or "__pycache__" in source.parts or source.name.startswith("."):
                continue
            target = Path(self.build_lib) / PACKAGED / source.relative_to(CONTENT)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithContent})

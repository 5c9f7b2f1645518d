"""Build hook (the project's metadata is in pyproject.toml): a wheel carries what the service
reads from the checkout otherwise, so `pip install .` / `pipx install .` give a working
`tiangong` on their own.

- the three extension builds (scripts/build_extension.py) → tiangong/extension/<browser>/,
  which `tiangong extension` prints and zips;
- the protocol schema, protocol/schema/v1 → tiangong/protocol/schema/v1/, which the codec
  validates frames against.

Editable installs skip both: they read the checkout itself.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithExtension(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        package = Path(self.build_lib) / "tiangong"
        spec = importlib.util.spec_from_file_location(
            "build_extension", ROOT / "scripts" / "build_extension.py"
        )
        assert spec is not None and spec.loader is not None
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        for browser in builder.BROWSERS:
            builder.build(browser, package / "extension")
        shutil.copytree(
            ROOT / "protocol" / "schema" / "v1",
            package / "protocol" / "schema" / "v1",
            dirs_exist_ok=True,
        )


setup(cmdclass={"build_py": BuildWithExtension})

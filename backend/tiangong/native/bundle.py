"""The browser extension that ships with the service: `tiangong extension`.

An installed package (`pip install .`, `pipx install .`) carries the three builds in
`tiangong/extension/{chromium,opera,firefox}` (setup.py runs scripts/build_extension.py when
the wheel is built). A checkout, editable installs included, builds them into `dist/` with
the same script each time it is asked, so the folder printed is never stale.
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path
from types import ModuleType

from tiangong import __version__

BUILDS = ("chromium", "opera", "firefox")
PACKAGED = Path(__file__).resolve().parents[1] / "extension"
CHECKOUT = Path(__file__).resolve().parents[3]
# Fixed entry times: the same build always gives the same zip.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

HOW_TO_LOAD = {
    "chromium": (
        "Chromium, Chrome, Edge, Brave, Vivaldi",
        "chrome://extensions (edge://extensions, brave://extensions, vivaldi://extensions) → "
        "Developer mode → Load unpacked → this folder",
    ),
    "opera": ("Opera", "opera://extensions → Developer mode → Load unpacked → this folder"),
    "firefox": (
        "Firefox",
        "about:debugging#/runtime/this-firefox → Load Temporary Add-on… → manifest.json in "
        "this folder (until Firefox restarts; a lasting install needs the zip signed by AMO)",
    ),
}


class ExtensionMissingError(Exception):
    """Neither a packaged build nor a checkout to build one from."""


def _build_script() -> ModuleType | None:
    script = CHECKOUT / "scripts" / "build_extension.py"
    if not (script.is_file() and (CHECKOUT / "extension" / "manifest.json").is_file()):
        return None
    spec = importlib.util.spec_from_file_location("tiangong_build_extension", script)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extension_builds(
    browsers: tuple[str, ...] = BUILDS, *, packaged: Path = PACKAGED, out: Path | None = None
) -> dict[str, Path]:
    """Each build's folder (with manifest.json at its root): the package's own, else built
    from the checkout into `out` (default: its dist/)."""
    if all((packaged / b / "manifest.json").is_file() for b in browsers):
        return {b: packaged / b for b in browsers}
    script = _build_script()
    if script is None:
        raise ExtensionMissingError(
            f"no built extension in {packaged} and no checkout to build one from; "
            "reinstall the package (`pipx install .` builds it)"
        )
    target = CHECKOUT / "dist" if out is None else out
    return {b: Path(script.build(b, target)) for b in browsers}


def _store_manifest(browser: str, manifest: dict[str, object]) -> dict[str, object]:
    """The Chrome Web Store refuses a manifest with `key` (the store signs with its own)."""
    if browser == "chromium":
        return {k: v for k, v in manifest.items() if k != "key"}
    return manifest


def write_zip(browser: str, build: Path, out_dir: Path) -> Path:
    """`tiangong-<version>-<browser>.zip`: the build with manifest.json at the root, as the
    stores take it (Firefox's AMO takes the same zip as an .xpi)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"tiangong-{__version__}-{browser}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in build.rglob("*") if p.is_file()):
            name = path.relative_to(build).as_posix()
            data = path.read_bytes()
            if name == "manifest.json":
                manifest = _store_manifest(browser, json.loads(data))
                data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
            entry = zipfile.ZipInfo(name, ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    target.write_bytes(buffer.getvalue())
    return target

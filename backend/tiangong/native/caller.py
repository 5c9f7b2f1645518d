"""Who started the host: the browser vouches for the extension in the host's arguments.

- Chromium family (Chromium, Chrome, Opera, Edge, Brave, Vivaldi): the first argument is the
  caller's origin, `chrome-extension://<id>/`; on Windows a `--parent-window=<handle>`
  follows.
- Firefox: the first argument is the path of the host manifest, the second the add-on's id
  (its `browser_specific_settings.gecko.id`).

The browsers start a host only for the extensions its manifest allows (`allowed_origins`,
`allowed_extensions`); the host checks again, so a manifest edited by hand or a run from a
terminal gets no token either.
"""

from __future__ import annotations

from dataclasses import dataclass

from tiangong.settings import EXTENSION_ID

# The name extensions pass to `runtime.connectNative`, and the manifests' file name.
HOST_NAME = "local.tiangong.host"
# The Firefox build's add-on id (scripts/build_extension.py writes it into the build).
GECKO_ID = "tiangong@tiangong.local"
CHROMIUM_ORIGIN = f"chrome-extension://{EXTENSION_ID}/"


class ForbiddenCallerError(Exception):
    """The host was started for something other than the Tiangong extension."""


@dataclass(frozen=True)
class Caller:
    browser: str  # "chromium" (the whole family) or "firefox"
    identity: str  # the origin (Chromium) or the add-on id (Firefox) the browser passed


def identify(args: list[str]) -> Caller:
    """The caller named by the host's arguments, if it is ours; else `ForbiddenCallerError`."""
    positional = [a for a in args if not a.startswith("--parent-window=")]
    if positional and positional[0].startswith("chrome-extension://"):
        origin = positional[0]
        # The docs show both spellings; Chromium passes the trailing slash.
        if origin.rstrip("/") + "/" == CHROMIUM_ORIGIN and len(positional) == 1:
            return Caller("chromium", origin)
        raise ForbiddenCallerError(
            f"this host answers only the Tiangong extension, not {origin[:100]!r}"
        )
    if len(positional) == 2:
        addon = positional[1]
        if addon == GECKO_ID:
            return Caller("firefox", addon)
        raise ForbiddenCallerError(
            f"this host answers only the Tiangong add-on, not {addon[:100]!r}"
        )
    raise ForbiddenCallerError(
        "this host is started by the browser for the Tiangong extension (see `tiangong install`)"
    )

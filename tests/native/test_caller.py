"""Who may use the host: the browsers pass the caller's identity as the host's arguments
(Chromium: the origin; Firefox: the manifest path and the add-on id)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.service_process import service_env
from tiangong.native.caller import CHROMIUM_ORIGIN, GECKO_ID, ForbiddenCallerError, identify
from tiangong.settings import EXTENSION_ID


def test_chromium_family_browsers_pass_the_pinned_extension_origin() -> None:
    assert f"chrome-extension://{EXTENSION_ID}/" == CHROMIUM_ORIGIN
    assert identify([CHROMIUM_ORIGIN]).browser == "chromium"
    assert identify([CHROMIUM_ORIGIN.rstrip("/")]).browser == "chromium"
    # Chromium on Windows adds the calling window.
    assert identify([CHROMIUM_ORIGIN, "--parent-window=0"]).browser == "chromium"


def test_firefox_passes_the_manifest_path_and_our_add_on_id() -> None:
    caller = identify(
        ["/home/u/.mozilla/native-messaging-hosts/local.tiangong.host.json", GECKO_ID]
    )
    assert caller.browser == "firefox" and caller.identity == GECKO_ID


@pytest.mark.parametrize(
    "args",
    [
        ["chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"],
        [CHROMIUM_ORIGIN + "x"],
        [CHROMIUM_ORIGIN.upper()],
        ["chrome-extension://" + EXTENSION_ID + ".evil/"],
        [CHROMIUM_ORIGIN, "chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"],
        ["/path/manifest.json", "other@add.on"],
        ["/path/manifest.json", GECKO_ID.upper()],
        [],
        ["https://evil.example/"],
    ],
)
def test_any_other_caller_is_refused(args: list[str]) -> None:
    with pytest.raises(ForbiddenCallerError):
        identify(args)


def test_the_host_loads_nothing_of_the_service_so_the_browser_gets_an_answer_fast() -> None:
    """The browser waits on the host's start: it must not pull in the server, the engines
    or torch (it starts the service as a separate process)."""
    probe = (
        "import sys; from tiangong import cli; "
        "from tiangong.native import bundle, commands, host, install, launch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'aiohttp', "
        "'transformers') or m.startswith(('tiangong.server', 'tiangong.pipeline', "
        "'tiangong.runtime', 'tiangong.engine'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=service_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

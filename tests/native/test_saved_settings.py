"""The serve options saved for the service the browser starts (`<data dir>/serve.json`), and
`native-host --foreground`, which the autostart unit runs: the service with those options,
any saved secret in its environment, never in its arguments."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.service_process import health, service_env, tiangong_command
from tiangong.native.saved import SavedSettingsError, load_saved, save, saved_path


def test_saved_options_become_serve_flags_and_the_key_stays_out_of_them(tmp_path: Path) -> None:
    save(tmp_path, {"engine": "openai", "port": 9000, "openai_api_key": "sk-secret-key-12345"})
    assert stat.S_IMODE(os.stat(saved_path(tmp_path)).st_mode) == 0o600
    saved = load_saved(tmp_path)
    assert saved.port == 9000
    assert saved.serve_args(9001) == ["--port", "9001", "--engine", "openai"]
    assert saved.serve_env({})["TIANGONG_OPENAI_API_KEY"] == "sk-secret-key-12345"


def test_without_a_file_the_service_defaults_apply(tmp_path: Path) -> None:
    saved = load_saved(tmp_path)
    assert saved.port == 8765 and saved.serve_args(8765) == ["--port", "8765"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not readable JSON"),
        ('["engine"]', "JSON object"),
        ('{"engin": "auto"}', "unknown option 'engin'"),
        ('{"engine": "fake"}', "engine must be one of"),
        ('{"port": "8765"}', "port must be a whole number"),
        ('{"port": 70000}', "between 1 and 65535"),
        ('{"port": true}', "port must be a whole number"),
        ('{"openai_api_key": 5}', "openai_api_key must be a string"),
    ],
)
def test_a_broken_file_is_refused_naming_the_file_and_the_option(
    tmp_path: Path, content: str, says: str
) -> None:
    saved_path(tmp_path).write_text(content)
    with pytest.raises(SavedSettingsError) as refused:
        load_saved(tmp_path)
    assert says in str(refused.value) and str(saved_path(tmp_path)) in str(refused.value)


def test_foreground_runs_the_service_with_the_saved_options(tmp_path: Path) -> None:
    port = free_port()
    key = "sk-saved-upstream-key-0123456789"
    save(tmp_path, {"engine": "extractive", "port": port, "openai_api_key": key})
    proc = subprocess.Popen(
        tiangong_command("native-host", "--foreground", "--data-dir", str(tmp_path)),
        env=service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while health(port) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        body = health(port)
        assert body is not None and body["engine"]["name"] == "extractive"
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert b"serve" in argv and key.encode() not in argv
        assert f"TIANGONG_OPENAI_API_KEY={key}".encode() in environ
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    token = (tmp_path / "token").read_text().strip()
    assert "Pairing token: in" in output and token not in output


def test_foreground_with_a_broken_file_says_what_is_wrong(tmp_path: Path) -> None:
    saved_path(tmp_path).write_text(json.dumps({"port": "x"}))
    done = subprocess.run(
        tiangong_command("native-host", "--foreground", "--data-dir", str(tmp_path)),
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "port must be a whole number" in done.stderr

"""The `tiangong` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.service_process import service_env, start_serve, tiangong_command

ARTICLE = """<html lang="en"><head><title>Night trains return</title></head><body>
<nav>Home | World | Sport</nav><article><h1>Night trains return to Europe</h1>
<p>Night trains are coming back across Europe as travellers look for low-carbon journeys.</p>
<p>A new sleeper service links Brussels and Prague three times a week since May.</p>
<p>Operators say tickets for the summer months sold out within days.</p>
<p>Rail companies still struggle with old rolling stock and high track fees.</p>
</article></body></html>"""


def tiangong(*args: str) -> list[str]:
    return tiangong_command(*args)


def environment(**extra: str) -> dict[str, str]:
    return service_env(**extra)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    args = ("--engine", "extractive", "--data-dir", str(tmp_path))
    proc = start_serve(port, *args, output=subprocess.PIPE, text=True)
    yield proc, port, tmp_path
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_prints_address_engine_and_token_and_answers_health(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, data_dir = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        health = json.load(response)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    token = (data_dir / "token").read_text().strip()
    assert f"listening on ws://127.0.0.1:{port}/ws" in output
    assert "Engine: extractive" in output
    assert f"Pairing token: {token}" in output
    assert health["engine"]["name"] == "extractive"
    assert proc.returncode == 0


def test_token_prints_the_stored_token(tmp_path: Path) -> None:
    first = subprocess.run(
        tiangong("token", "--data-dir", str(tmp_path)),
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert first == (tmp_path / "token").read_text().strip() and len(first) >= 40


def test_serve_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        tiangong("serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback only" in result.stderr


def test_summarize_and_ask_stream_in_the_terminal(tmp_path: Path) -> None:
    page = tmp_path / "trains.html"
    page.write_text(ARTICLE)
    data = str(tmp_path / "data")
    summary = subprocess.run(
        tiangong(
            "summarize",
            str(page),
            "--engine",
            "extractive",
            "--length",
            "short",
            "--data-dir",
            data,
        ),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = subprocess.run(
        tiangong(
            "ask",
            str(page),
            "Where does the sleeper service go?",
            "--engine",
            "extractive",
            "--data-dir",
            data,
        ),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    bullets = [line for line in summary.stdout.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3 and all(b[2:] in ARTICLE for b in bullets)
    assert "Home | World" not in summary.stdout
    assert "Brussels and Prague" in answer.stdout
    assert "whole, 100% read" in answer.stderr


def test_a_pdf_file_is_read_page_by_page_in_the_terminal(tmp_path: Path) -> None:
    from tests.support.pdf_files import text_pdf

    report = tmp_path / "harbour.pdf"
    report.write_bytes(
        text_pdf(
            [
                "The harbour survey counted four hundred boats moored in the old basin.",
                "Dredging the eastern channel will cost nine million euros over two years.",
            ]
        )
    )
    answer = subprocess.run(
        tiangong(
            "ask",
            str(report),
            "What will dredging the eastern channel cost?",
            "--engine",
            "extractive",
            "--data-dir",
            str(tmp_path / "data"),
        ),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "nine million euros" in answer.stdout
    assert "[1, p. 2] Dredging the eastern channel" in answer.stderr


def test_environment_variables_configure_serve(tmp_path: Path) -> None:
    port = free_port()
    env = environment(
        TIANGONG_PORT=str(port),
        TIANGONG_ENGINE="extractive",
        TIANGONG_DATA_DIR=str(tmp_path),
        TIANGONG_TOKEN="from-env",
    )
    proc = start_serve(port, env=env, output=subprocess.PIPE, text=True, port_flag=False)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert "Pairing token: from-env" in output and not (tmp_path / "token").exists()

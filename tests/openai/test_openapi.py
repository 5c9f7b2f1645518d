"""schemathesis (property-based, from our OpenAPI document) against the running API: every
documented operation, valid and invalid bodies, with and without the token. It checks that
nothing answers 5xx, that every status, content type, header and body is the documented one,
that invalid bodies are refused and valid ones accepted, and that auth is not ignored."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import TOKEN, run_server
from tiangong.engine.fake import FakeEngine
from tiangong.server.openai_api import OPENAPI_FILE

SCHEMATHESIS = Path(sys.executable).with_name("st")


async def test_the_api_keeps_to_its_openapi_document(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            str(OPENAPI_FILE),
            "--url",
            server.http_url,
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 240)
    report = output.decode("utf-8", "replace")
    assert process.returncode == 0, report[-6000:]
    assert "3 selected / 3 total" in report
    assert "No issues found" in report

"""Shared fixtures: a real aiohttp server on a free loopback port, real websockets clients."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No test may reach for a model hub (there is none here, and tests must not depend on one).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from ephemeral_port_reserve import reserve

from tiangong.engine.base import Engine
from tiangong.server.app import create_app, start_site
from tiangong.settings import Settings

TOKEN = "test-token-0123456789"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port for a server the test starts (in this process or another).

    A port merely found free can be handed to any other process before the server binds it,
    and the suite shares the machine. This one is left in TIME_WAIT: the kernel hands it to
    no one else for a minute, while a server that binds with SO_REUSEADDR (aiohttp's and
    asyncio's default) still can."""
    return int(reserve("127.0.0.1"))


@dataclass
class RunningServer:
    app: web.Application
    settings: Settings

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def run_server(
    data_dir: Path, *, serve_with: Engine | None = None, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """Start the real app; `serve_with` injects an engine instead of loading one."""
    settings = replace(
        Settings(engine="fake", data_dir=data_dir, token=TOKEN, port=free_port()), **overrides
    )
    app = create_app(settings, engine=serve_with)
    runner = await start_site(app)
    try:
        yield RunningServer(app, settings)
    finally:
        await runner.cleanup()

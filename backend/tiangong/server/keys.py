"""Typed keys of the application's shared state."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from tiangong.extract.worker import ExtractionWorker
from tiangong.pipeline.service import Service
from tiangong.serving.host import EngineHost
from tiangong.serving.scheduler import Scheduler
from tiangong.settings import Settings
from tiangong.store.history import HistoryStore

if TYPE_CHECKING:
    from tiangong.server.ws import Connection

SETTINGS_KEY = web.AppKey("settings", Settings)
TOKEN_KEY = web.AppKey("token", str)
HOST_KEY = web.AppKey("engine_host", EngineHost)
SCHEDULER_KEY = web.AppKey("scheduler", Scheduler)
STORE_KEY = web.AppKey("store", HistoryStore)
EXTRACTOR_KEY = web.AppKey("extractor", ExtractionWorker)
SERVICE_KEY = web.AppKey("service", Service)
CONNECTIONS_KEY: web.AppKey[set[Connection]] = web.AppKey("connections")
TASKS_KEY = web.AppKey("tasks", set[asyncio.Task[None]])

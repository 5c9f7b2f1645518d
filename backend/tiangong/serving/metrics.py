"""Prometheus metrics (served at `/metrics` by server/http.py, bearer token required).

What an operator of a shared server watches: requests and their outcomes, errors by code,
time to first token and decode speed, the queue, the prefix cache, GPU memory. Each app has
its own registry (several apps may live in one process: tests, embedding). Jobs are timed
where every request passes, the scheduler (`MeteredScheduler`); errors are counted where
they are reported (the WebSocket service and the HTTP API).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from tiangong.engine.base import CancelToken, Delta, Finish, Job
from tiangong.errors import TiangongError
from tiangong.serving.host import EngineHost
from tiangong.serving.scheduler import Scheduler

log = logging.getLogger(__name__)

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 40, 60, 100, 150, 250, 500)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tiangong_requests",
            "Answers generated, by task and how they ended (stop, length, cancelled, error).",
            ["task", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tiangong_errors",
            "Errors reported to clients, by wire code and API (ws, openai).",
            ["code", "api"],
            registry=self.registry,
        )
        self.http = Counter(
            "tiangong_http_responses",
            "HTTP responses by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.ttft = Histogram(
            "tiangong_time_to_first_token_seconds",
            "From the job entering the scheduler (queue included) to its first text.",
            ["task"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.tokens_per_second = Histogram(
            "tiangong_decode_tokens_per_second",
            "Completion tokens a second after the first one, per answer.",
            ["task"],
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=self.registry,
        )

    def error(self, code: str, api: str) -> None:
        self.errors.labels(code=code, api=api).inc()

    def watch(self, host: EngineHost, scheduler: Scheduler) -> None:
        self.registry.register(_LiveCollector(host, scheduler))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeteredScheduler(Scheduler):
    """The scheduler, timing every job it streams."""

    def __init__(self, host: EngineHost, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.metrics = metrics

    async def stream(  # type: ignore[override]
        self, job: Job, cancel: CancelToken, **kwargs: Any
    ) -> AsyncIterator[Delta | Finish]:
        started = time.monotonic()
        first: float | None = None
        outcome = "error"
        finish: Finish | None = None
        try:
            async for event in super().stream(job, cancel, **kwargs):
                if isinstance(event, Delta) and first is None:
                    first = time.monotonic()
                    self.metrics.ttft.labels(task=job.task).observe(first - started)
                elif isinstance(event, Finish):
                    outcome, finish = event.finish_reason, event
                    self._observe_speed(job, event, first)
                yield event
        except TiangongError as exc:
            outcome = "overloaded" if exc.code == "overloaded" else "error"
            raise
        finally:
            self.metrics.requests.labels(task=job.task, outcome=outcome).inc()
            # One line per answer (the request id comes from the logging context); sizes
            # and times only, never text.
            log.info(
                "%s answer: %s, %d prompt + %d completion tokens, first text after %s",
                job.task,
                outcome,
                finish.prompt_tokens if finish else 0,
                finish.completion_tokens if finish else 0,
                f"{first - started:.2f} s" if first is not None else "-",
                extra={"task": job.task, "outcome": outcome},
            )

    def _observe_speed(self, job: Job, finish: Finish, first: float | None) -> None:
        if first is None or finish.completion_tokens < 2:
            return
        seconds = time.monotonic() - first
        if seconds > 0:
            rate = (finish.completion_tokens - 1) / seconds
            self.metrics.tokens_per_second.labels(task=job.task).observe(rate)


class _LiveCollector(Collector):
    """Values read at scrape time: queue, engine, prefix cache, GPU memory."""

    def __init__(self, host: EngineHost, scheduler: Scheduler) -> None:
        self._host = host
        self._scheduler = scheduler

    def describe(self) -> list[Any]:
        return []  # dynamic; prometheus_client then skips up-front name checks

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily(
            "tiangong_queue_depth", "Jobs waiting for a slot.", value=self._scheduler.queue_depth
        )
        yield GaugeMetricFamily(
            "tiangong_running_jobs", "Jobs streaming now.", value=self._scheduler.running
        )
        status = self._host.status()
        engine = GaugeMetricFamily(
            "tiangong_engine_info",
            "The engine that serves (1), with its model and state.",
            labels=["name", "model", "state"],
        )
        engine.add_metric([status.name, status.model, status.state], 1)
        yield engine
        yield GaugeMetricFamily(
            "tiangong_context_tokens", "Tokens the model takes.", value=status.context_tokens
        )
        yield from _prefix_cache(self._host)
        yield from _gpu_memory()


def _prefix_cache(host: EngineHost) -> Iterator[Any]:
    stats = host.engine.prefix_cache_stats() if host.engine is not None else None
    if stats is None:
        return
    hits, lookups = stats
    yield CounterMetricFamily(
        "tiangong_prefix_cache_hits", "Prompts that reused a cached prefix.", value=hits
    )
    yield CounterMetricFamily(
        "tiangong_prefix_cache_lookups", "Prompts that looked for a cached prefix.", value=lookups
    )
    yield GaugeMetricFamily(
        "tiangong_prefix_cache_hit_ratio",
        "Hits / lookups since start (use rate() of the counters for a window).",
        value=hits / lookups if lookups else 0.0,
    )


def _gpu_memory() -> Iterator[Any]:
    # Only when torch is already loaded (the transformers engine): the openai and
    # extractive engines never pay for importing it.
    torch: Any = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return
    family = GaugeMetricFamily(
        "tiangong_gpu_memory_bytes",
        "GPU memory by device: allocated and reserved by this process, total.",
        labels=["device", "kind"],
    )
    for index in range(torch.cuda.device_count()):
        device = str(index)
        family.add_metric([device, "allocated"], torch.cuda.memory_allocated(index))
        family.add_metric([device, "reserved"], torch.cuda.memory_reserved(index))
        total = torch.cuda.get_device_properties(index).total_memory
        family.add_metric([device, "total"], total)
    yield family

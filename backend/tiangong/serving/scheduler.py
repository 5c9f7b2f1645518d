"""The only caller of engines: admission, priorities, queueing, concurrency and cancellation.

Up to the engine's `max_concurrency` jobs stream at once (an engine that batches decodes
them together); up to `max_queue` more wait; beyond that a job is refused at once with
`overloaded` (retryable) rather than left waiting without end. Waiting jobs start by
priority, then arrival: interactive requests (questions, summaries, rewrites) before
background work (the map step of a long summary), and background work never takes the
last slot, so a question asked during a long summary starts at once. A job cancelled while
it waits leaves the queue at once and finishes as `cancelled`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from tiangong.engine.base import CancelToken, Delta, Finish, Job, Priority
from tiangong.errors import EngineFailedError, OverloadedError, TiangongError
from tiangong.serving.host import EngineHost


@dataclass(order=True)
class _Waiter:
    priority: Priority
    arrival: int
    cap: int = field(compare=False)
    admitted: asyncio.Future[None] = field(compare=False)


class Scheduler:
    def __init__(self, host: EngineHost, *, max_queue: int = 32) -> None:
        self._host = host
        self._max_queue = max_queue
        self._running = 0
        self._waiters: list[_Waiter] = []
        self._arrivals = itertools.count()

    @property
    def queue_depth(self) -> int:
        return sum(1 for w in self._waiters if not w.admitted.done())

    @property
    def running(self) -> int:
        return self._running

    async def stream(
        self,
        job: Job,
        cancel: CancelToken,
        *,
        on_wait: Callable[[int], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Delta | Finish]:
        """Stream one job; `on_wait(position)` is told when it has to queue first."""
        engine = await self._host.get()
        slots = max(1, engine.max_concurrency)
        priority = job.priority
        cap = slots - 1 if priority is Priority.BACKGROUND and slots > 1 else slots
        if cancel.cancelled:
            yield Finish("cancelled", 0, 0)
            return
        if not self._waiters and self._running < cap:
            self._running += 1
        else:
            depth = self.queue_depth
            if depth >= self._max_queue:
                raise OverloadedError(
                    f"the server is busy ({depth} requests waiting); try again shortly"
                )
            if on_wait is not None:
                await on_wait(depth + 1)
            if not await self._wait_for_slot(priority, cap, cancel):
                yield Finish("cancelled", 0, 0)
                return
        try:
            async for event in engine.stream(job, cancel):
                yield event
        except TiangongError:
            raise
        except Exception as exc:
            raise EngineFailedError(f"the model failed: {type(exc).__name__}") from exc
        finally:
            self._running -= 1
            self._admit()

    async def _wait_for_slot(self, priority: Priority, cap: int, cancel: CancelToken) -> bool:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._arrivals), cap, loop.create_future())
        heapq.heappush(self._waiters, waiter)
        self._admit()

        def wake() -> None:
            if not waiter.admitted.done():
                waiter.admitted.cancel()

        cancel.on_cancel(wake)
        try:
            await waiter.admitted
        except asyncio.CancelledError:
            if cancel.cancelled and waiter.admitted.cancelled():
                self._admit()
                return False
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                self._running -= 1  # admitted, then the caller went away
                self._admit()
            else:
                waiter.admitted.cancel()
            raise
        return True

    def _admit(self) -> None:
        """Start waiting jobs in priority order while the first in line fits."""
        while self._waiters:
            head = self._waiters[0]
            if head.admitted.done():
                heapq.heappop(self._waiters)
                continue
            if self._running >= head.cap:
                return
            heapq.heappop(self._waiters)
            self._running += 1
            head.admitted.set_result(None)

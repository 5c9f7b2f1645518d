"""The only caller of engines: admission, queueing, concurrency and cancellation.

A bounded number of jobs stream at once (the engine's `max_concurrency`); up to `max_queue`
more wait in arrival order; beyond that a job is refused at once with `overloaded`
(retryable) rather than left waiting without end. A job cancelled while it waits leaves the
queue at once and finishes as `cancelled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tiangong.engine.base import CancelToken, Delta, Finish, Job
from tiangong.engine.registry import EngineHost
from tiangong.errors import EngineFailedError, OverloadedError, TiangongError


class Scheduler:
    def __init__(self, host: EngineHost, *, max_queue: int = 32) -> None:
        self._host = host
        self._max_queue = max_queue
        self._waiting = 0
        self._running = 0
        self._slots: asyncio.Semaphore | None = None

    @property
    def queue_depth(self) -> int:
        return self._waiting

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
        if self._slots is None:
            self._slots = asyncio.Semaphore(engine.max_concurrency)
        slots = self._slots
        if slots.locked():
            if self._waiting >= self._max_queue:
                raise OverloadedError(
                    f"the server is busy ({self._waiting} requests waiting); try again shortly"
                )
            if on_wait is not None:
                await on_wait(self._waiting + 1)
        self._waiting += 1
        try:
            acquired = await _acquire_unless_cancelled(slots, cancel)
        finally:
            self._waiting -= 1
        if not acquired:
            yield Finish("cancelled", 0, 0)
            return
        self._running += 1
        try:
            async for event in engine.stream(job, cancel):
                yield event
        except TiangongError:
            raise
        except Exception as exc:
            raise EngineFailedError(f"the model failed: {type(exc).__name__}") from exc
        finally:
            self._running -= 1
            slots.release()


async def _acquire_unless_cancelled(slots: asyncio.Semaphore, cancel: CancelToken) -> bool:
    if cancel.cancelled:
        return False
    if not slots.locked():
        await slots.acquire()
        return True
    loop = asyncio.get_running_loop()
    cancelled: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not cancelled.done():
            cancelled.set_result(None)

    cancel.on_cancel(wake)
    acquire = asyncio.ensure_future(slots.acquire())
    waiters: set[asyncio.Future[Any]] = {acquire, cancelled}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if acquire.done() and not cancel.cancelled:
        return True
    if acquire.done():
        slots.release()
    else:
        acquire.cancel()
        try:
            await acquire
        except asyncio.CancelledError:
            pass
        else:
            slots.release()
    return False

"""Page extraction (HTML and PDF) in worker processes, so a hostile page never blocks the loop.

Each worker has a memory ceiling; a page that takes longer than the timeout gets its worker
killed and replaced, and the request fails with `too_large` while the server keeps serving.
The timeout is the page's own: the workers' start (a new interpreter importing the extractor,
a second or more on a busy machine) is waited for before a page's clock starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from tiangong.errors import TiangongError, TooLargeError

if TYPE_CHECKING:
    from tiangong.extract import Article, PdfDocument

T = TypeVar("T")

log = logging.getLogger(__name__)

WORKER_MEMORY_BYTES = 2 * 1024**3
# Workers not up by then are waited for within the page's own timeout.
WORKER_START_SECONDS = 60.0


def _init_worker(limit: int, parent: int, up: Any) -> None:
    with contextlib.suppress(ValueError, OSError):  # a platform without RLIMIT_AS
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # A service killed with SIGKILL cannot stop its workers: they leave on their own.
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    import tiangong.extract  # noqa: F401 - import once per worker, not per page

    up.put(os.getpid())


def _nothing() -> None:
    """Submitted once per worker, so that the pool starts them all at once."""


def _wait_until_up(up: Any, workers: int) -> None:
    """Returns once every worker has said it is up, the pool is stopped (None), or at the
    deadline."""
    deadline = time.monotonic() + WORKER_START_SECONDS
    for _ in range(workers):
        try:
            if up.get(timeout=max(0.0, deadline - time.monotonic())) is None:
                return
        except queue.Empty:
            return


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _extract(html: str, url: str | None, selection: str | None) -> Article:
    from tiangong.extract import extract_article

    try:
        return extract_article(html, url, selection=selection)
    except MemoryError:
        raise TooLargeError("the page needs more memory to read than a page may use") from None
    except RecursionError:
        raise TooLargeError("the page is nested too deeply to read") from None


def _extract_pdf(data: bytes) -> PdfDocument:
    from tiangong.extract import extract_pdf

    try:
        return extract_pdf(data)
    except MemoryError:
        raise TooLargeError("the PDF needs more memory to read than a page may use") from None
    except RecursionError:
        raise TooLargeError("the PDF is nested too deeply to read") from None


class ExtractionWorker:
    def __init__(self, *, timeout: float = 10.0, workers: int = 2) -> None:
        self._timeout = timeout
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._up: Any = None  # the pool's workers put their pid here once started
        self._starting: asyncio.Task[None] | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process holding a model and threads is neither cheap nor safe.
            context = multiprocessing.get_context("spawn")
            self._up = context.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(WORKER_MEMORY_BYTES, os.getpid(), self._up),
            )
            for _ in range(self._workers):
                self._pool.submit(_nothing)  # none is idle yet, so each starts a worker
            self._starting = asyncio.create_task(
                asyncio.to_thread(_wait_until_up, self._up, self._workers)
            )
        return self._pool

    async def _started_pool(self) -> ProcessPoolExecutor:
        """The pool once its workers are up; one killed meanwhile is replaced."""
        while True:
            pool, starting = self._executor(), self._starting
            if starting is not None:
                # Shielded: a request cancelled meanwhile must not cancel the others' wait.
                await asyncio.shield(starting)
            if pool is self._pool:
                return pool

    async def warm_up(self) -> None:
        await self.extract("<html><body><p>warm up</p></body></html>", None)

    async def extract(self, html: str, url: str | None, selection: str | None = None) -> Article:
        return await self._run(_extract, html, url, selection)

    async def extract_pdf(self, data: bytes) -> PdfDocument:
        return await self._run(_extract_pdf, data)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        for attempt in (1, 2):
            loop = asyncio.get_running_loop()
            pool = await self._started_pool()
            try:
                # A pool that broke while starting refuses the page here (BrokenProcessPool).
                future = loop.run_in_executor(pool, work, *args)
                return await asyncio.wait_for(future, self._timeout)
            except TimeoutError:
                log.warning("extraction took over %.0f s; restarting its worker", self._timeout)
                self._kill()
                raise TooLargeError(
                    f"the page took more than {self._timeout:.0f} s to read; it is too large or "
                    "too deeply nested"
                ) from None
            except BrokenProcessPool:
                # Another page's timeout (or the memory ceiling) took the pool down: retry once.
                self._kill()
                if attempt == 2:
                    raise TooLargeError(
                        "the page could not be read within the memory limit"
                    ) from None
            except TiangongError:
                raise
        raise AssertionError("unreachable")

    def _stop_waiting(self) -> None:
        """Wakes whoever waits for the current pool's workers; the pool is going."""
        up, self._up, self._starting = self._up, None, None
        if up is not None:
            up.put(None)
            up.close()

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        self._stop_waiting()
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._stop_waiting()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

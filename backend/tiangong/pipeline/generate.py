"""Step: generation. The engine a request needs (waiting while it loads), one job through
the scheduler streamed out as `delta` frames, and the map step that takes notes on every
part of a page too long to read at once (background work, with `reading` progress)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from tiangong.engine.base import Delta, Engine, Finish, GenerationParams, Job, Priority
from tiangong.errors import UnsupportedError
from tiangong.pipeline.prompts import MAP_MAX_TOKENS, map_messages
from tiangong.pipeline.request import PageDoc, RequestCancelled, RequestContext
from tiangong.protocol.frames import delta_frame, progress_frame

# How often a request waiting for the engine to load says so.
LOADING_PROGRESS_EVERY = 0.5


async def ready_engine(ctx: RequestContext, capability: str) -> Engine:
    """The engine that serves, once it is loaded (`progress` frames until then), if it can
    do what the request asks."""
    host = ctx.resources.host
    while not host.ready:
        if ctx.cancel.cancelled:
            raise RequestCancelled
        loading = host.loading
        if loading is None:
            await ctx.emit(progress_frame(ctx.id, "loading_model", 0, 0))
        else:
            await ctx.emit(progress_frame(ctx.id, loading.stage, loading.done, loading.total))
        try:
            await asyncio.wait_for(asyncio.shield(host.get()), LOADING_PROGRESS_EVERY)
        except TimeoutError:
            continue
    engine = await host.get()
    if capability not in engine.capabilities:
        raise UnsupportedError(
            f"the {engine.name} engine cannot {capability}"
            + (": it needs a model" if engine.name == "extractive" else "")
        )
    return engine


@dataclass
class Answer:
    """An answer as it streams: its text so far, when it began, how it ended."""

    parts: list[str] = field(default_factory=list)
    first_token: float | None = None  # time.monotonic() of the first text
    finish: Finish | None = None
    # Verbatim page sentences the answer restates, cited as they are (None: found by `cite`).
    quotes: list[str] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def say(self, ctx: RequestContext, text: str) -> None:
        """Text of an answer composed by the service (checked before it is said)."""
        if not text:
            return
        if self.first_token is None:
            self.first_token = time.monotonic()
        self.parts.append(text)
        await ctx.emit(delta_frame(ctx.id, text))


async def generate(ctx: RequestContext, job: Job, answer: Answer) -> None:
    """One job through the scheduler: text out as `delta` frames (a job that has to queue
    says where it waits) and into `answer`, which keeps what came if the job breaks."""

    async def queued(position: int) -> None:
        await ctx.emit(progress_frame(ctx.id, "queued", 0, position))

    async for event in ctx.resources.scheduler.stream(job, ctx.cancel, on_wait=queued):
        if isinstance(event, Delta):
            if answer.first_token is None:
                answer.first_token = time.monotonic()
            answer.parts.append(event.text)
            await ctx.emit(delta_frame(ctx.id, event.text))
        else:
            answer.finish = event


async def complete(ctx: RequestContext, job: Job) -> tuple[str, Finish]:
    """One job through the scheduler, its whole text kept back (nothing is sent): for text
    that is checked before anyone sees it. A cancelled job ends with finish `cancelled`."""
    parts: list[str] = []
    finish = Finish("cancelled", 0, 0)
    async for event in ctx.resources.scheduler.stream(job, ctx.cancel):
        if isinstance(event, Delta):
            parts.append(event.text)
        else:
            finish = event
    return "".join(parts), finish


@dataclass
class ReadingProgress:
    """`progress` frames of the map step: parts read so far out of all."""

    ctx: RequestContext
    total: int
    done: int = 0

    async def send(self) -> None:
        await self.ctx.emit(progress_frame(self.ctx.id, "reading", self.done, self.total))


async def take_notes(
    ctx: RequestContext,
    engine: Engine,
    doc: PageDoc,
    texts: list[str],
    *,
    progress: ReadingProgress,
) -> list[str]:
    """Notes on each text (parts of `doc`), run as background work so questions asked
    meanwhile go first; `engine.max_concurrency` at once."""
    notes = [""] * len(texts)
    limit = asyncio.Semaphore(max(1, engine.max_concurrency))

    async def one(i: int) -> None:
        async with limit:
            messages = map_messages(doc.title, doc.url, texts[i], part=i + 1, parts=len(texts))
            job = Job(
                "summarize",
                messages,
                GenerationParams(MAP_MAX_TOKENS),
                source_text=texts[i],
                priority=Priority.BACKGROUND,
            )
            text, finish = await complete(ctx, job)
            if finish.finish_reason == "cancelled":
                raise RequestCancelled
        notes[i] = text
        progress.done += 1
        await progress.send()

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(len(texts)):
                group.create_task(one(i))
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    ctx.check_cancel()
    return notes

"""One request end to end, dispatched to the module of its task.

Every task reads as its steps, in order (see docs/architecture.md):

    read.py → plan.py / sources.py → prompts.py → generate.py → cite.py → record.py
    (respond.py: the start frame, then generate → cite → record → citation and done frames)

Knows no transport: the WebSocket handler and the command line both call `Service.handle`
with an `emit` coroutine that delivers frames. Every frame about a request carries its id;
every finished answer is committed to the store before `done` is emitted.
"""

from __future__ import annotations

from collections.abc import Callable

from tiangong.engine.base import CancelToken, Finish
from tiangong.errors import TiangongError
from tiangong.logs import bind_request
from tiangong.pipeline.across_pages import answer_across_pages
from tiangong.pipeline.ask import ask
from tiangong.pipeline.history import history
from tiangong.pipeline.request import Emit, RequestCancelled, RequestContext, Resources
from tiangong.pipeline.rewrite import rewrite
from tiangong.pipeline.summarize import summarize
from tiangong.protocol.frames import done_frame
from tiangong.protocol.messages import Ask, History, Rewrite, Summarize


class Service:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        # Told the wire code of every request that ends in an error (metrics).
        self.on_error: Callable[[str], None] = lambda code: None

    async def handle(
        self, message: Summarize | Ask | Rewrite | History, emit: Emit, cancel: CancelToken
    ) -> None:
        ctx = RequestContext(message.id, emit, cancel, self.resources)
        bind_request(message.id)
        try:
            if isinstance(message, History):
                await history(message, ctx)
            elif isinstance(message, Summarize | Ask) and message.pages:
                await answer_across_pages(message, ctx)
            elif isinstance(message, Summarize):
                await summarize(message, ctx)
            elif isinstance(message, Ask):
                await ask(message, ctx)
            else:
                await rewrite(message, ctx)
        except RequestCancelled:
            cancelled = Finish("cancelled", 0, 0)
            await emit(
                done_frame(
                    message.id,
                    cancelled,
                    conversation_id=None,
                    started=ctx.started,
                    first_token=None,
                )
            )
        except TiangongError as exc:
            exc.request_id = message.id
            self.on_error(exc.code)
            raise
        except Exception:
            self.on_error("internal")
            raise

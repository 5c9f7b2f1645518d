"""The frames every task sends around its answer: `start` (what was read and how), then
generate → cite → record → `citation` frames → `done`.

The exchange is committed before `done` is sent, and a broken answer is committed too
(marked incomplete), whatever broke it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tiangong.engine.base import Job
from tiangong.errors import TiangongError
from tiangong.pipeline.cite import cite, cite_quotes
from tiangong.pipeline.generate import Answer, generate
from tiangong.pipeline.plan import Plan
from tiangong.pipeline.record import Exchange, record
from tiangong.pipeline.request import PageDoc, RequestContext
from tiangong.protocol.frames import (
    PageFacts,
    PlanFacts,
    citation_frame,
    done_frame,
    start_frame,
)


def page_facts(doc: PageDoc, plan: Plan) -> PageFacts:
    return PageFacts(
        title=doc.title,
        url=doc.url,
        words=doc.words,
        tokens=plan.page_tokens,
        lang=doc.lang,
        coverage=plan.coverage,
        pdf_pages=doc.pdf.page_count if doc.pdf is not None else None,
    )


async def announce(
    ctx: RequestContext,
    exchange: Exchange,
    *,
    doc: PageDoc,
    plan: Plan,
    prompt_tokens: int,
    sources: Sequence[PageFacts] = (),
) -> None:
    """The `start` frame: the page as read, the plan, and the whole prompt's size."""
    strategy = "selection" if doc.from_selection and plan.strategy == "whole" else plan.strategy
    await ctx.emit(
        start_frame(
            ctx.id,
            conversation_id=exchange.conversation.id,
            page=page_facts(doc, plan),
            plan=PlanFacts(strategy, plan.coverage, prompt_tokens),
            sources=sources,
        )
    )


async def respond(ctx: RequestContext, job: Job, exchange: Exchange) -> None:
    """The model's answer to `job`, streamed as it comes."""

    async def stream(answer: Answer) -> None:
        await generate(ctx, job, answer)

    await respond_with(ctx, exchange, stream)


Produce = Callable[[Answer], Awaitable[None]]


async def respond_with(ctx: RequestContext, exchange: Exchange, produce: Produce) -> None:
    """An answer `produce` writes into (streamed or composed), then cited, stored, done."""
    store = ctx.resources.store
    answer = Answer()
    try:
        await produce(answer)
    except BaseException as exc:
        stored = record(
            store,
            exchange,
            request_id=ctx.id,
            answer=answer.text,
            finish_reason="error",
            citations=[],
        )
        await asyncio.shield(stored)
        if isinstance(exc, TiangongError):
            exc.request_id = ctx.id
        raise
    finish = answer.finish
    assert finish is not None
    citations = []
    if finish.finish_reason != "cancelled" and answer.quotes is not None:
        citations = cite_quotes(answer.quotes, exchange.sources)
    elif finish.finish_reason != "cancelled" and exchange.cite_from:
        citations = cite(answer.text, exchange.cite_from, exchange.sources)
    stored = record(
        store,
        exchange,
        request_id=ctx.id,
        answer=answer.text,
        finish_reason=finish.finish_reason,
        citations=citations,
    )
    await asyncio.shield(stored)
    for citation in citations:
        await ctx.emit(citation_frame(ctx.id, citation))
    await ctx.emit(
        done_frame(
            ctx.id,
            finish,
            conversation_id=exchange.conversation.id,
            started=ctx.started,
            first_token=answer.first_token,
        )
    )

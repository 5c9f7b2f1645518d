"""Task: summarize one page (or its selection).

read → plan → (a page too long for the context: notes on every part, condensed in rounds
while they do not fit) → prompts → respond.
"""

from __future__ import annotations

from dataclasses import dataclass

from tiangong.engine.base import SUMMARIZE, ChatMessage, Engine, GenerationParams, Job
from tiangong.pipeline.generate import ReadingProgress, ready_engine, take_notes
from tiangong.pipeline.plan import Plan, group_notes, page_budget, plan_page
from tiangong.pipeline.prompts import (
    map_messages,
    notes_text,
    reduce_messages,
    summary_hints,
    summary_max_tokens,
    summary_messages,
)
from tiangong.pipeline.read import read_page
from tiangong.pipeline.record import Exchange, new_conversation
from tiangong.pipeline.request import PageDoc, RequestContext
from tiangong.pipeline.respond import announce, respond
from tiangong.protocol.messages import Summarize


@dataclass(frozen=True)
class Summary:
    """One summary under way: what was asked, of which page, by which engine."""

    req: Summarize
    doc: PageDoc
    engine: Engine
    max_new: int


async def summarize(req: Summarize, ctx: RequestContext) -> None:
    engine = await ready_engine(ctx, SUMMARIZE)
    doc = await read_page(ctx.resources.extractor, req.page, use_selection=True)
    ctx.check_cancel()
    max_new = summary_max_tokens(req.options)
    around = summary_messages(doc.title, doc.url, "", req.options)
    budget = page_budget(
        engine.context_tokens,
        answer_tokens=max_new,
        prompt_tokens=engine.count_prompt_tokens(around),
    )
    plan = plan_page(doc.text, doc.blocks, count_tokens=engine.count_tokens, budget=budget)
    summary = Summary(req, doc, engine, max_new)
    if plan.strategy == "map-reduce":
        await _summarize_long(ctx, summary, plan)
        return
    messages = summary_messages(doc.title, doc.url, plan.context, req.options)
    exchange = await _exchange(ctx, summary, cite_from=plan.context)
    await announce(
        ctx, exchange, doc=doc, plan=plan, prompt_tokens=engine.count_prompt_tokens(messages)
    )
    await respond(ctx, _job(summary, messages, source_text=plan.context), exchange)


async def _summarize_long(ctx: RequestContext, summary: Summary, plan: Plan) -> None:
    """Map-reduce: notes on every chunk (batched, with progress), then the summary."""
    req, doc, engine = summary.req, summary.doc, summary.engine
    exchange = await _exchange(ctx, summary, cite_from=doc.text)
    first = map_messages(doc.title, doc.url, plan.chunks[0].text, part=1, parts=len(plan.chunks))
    await announce(
        ctx, exchange, doc=doc, plan=plan, prompt_tokens=engine.count_prompt_tokens(first)
    )
    texts = [c.text for c in plan.chunks]
    progress = ReadingProgress(ctx, len(texts))
    await progress.send()
    notes = await take_notes(ctx, engine, doc, texts, progress=progress)
    around = reduce_messages(doc.title, doc.url, [], req.options)
    budget = page_budget(
        engine.context_tokens,
        answer_tokens=summary.max_new,
        prompt_tokens=engine.count_prompt_tokens(around),
    )
    groups = group_notes(notes, engine.count_tokens, budget)
    while len(groups) > 1:  # notes too long for one reduce: condense them in rounds
        merged = [notes_text(g) for g in groups]
        progress.total += len(merged)
        notes = await take_notes(ctx, engine, doc, merged, progress=progress)
        groups = group_notes(notes, engine.count_tokens, budget)
    messages = reduce_messages(doc.title, doc.url, notes, req.options)
    await respond(ctx, _job(summary, messages, source_text=doc.text), exchange)


async def _exchange(ctx: RequestContext, summary: Summary, *, cite_from: str) -> Exchange:
    what = "selection" if summary.doc.from_selection else "page"
    options = summary.req.options
    return Exchange(
        conversation=await new_conversation(ctx.resources.store, "summarize", summary.doc),
        kind="summarize",
        user_text=f"Summarize the {what} ({options.type}, {options.length})",
        cite_from=cite_from,
        sources=(summary.doc,),
        supersedes=summary.req.regenerates,
    )


def _job(summary: Summary, messages: tuple[ChatMessage, ...], *, source_text: str) -> Job:
    doc = summary.doc
    return Job(
        "summarize",
        messages,
        GenerationParams(summary.max_new),
        source_text=source_text,
        hints=summary_hints(summary.req.options, title=doc.title, page_lang=doc.lang),
    )

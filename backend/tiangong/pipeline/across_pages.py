"""Task: a summary of, or a question across, several pages at once (`pages`: open tabs, PDFs).

read (every page, in the extraction workers side by side) → plan (the budget shared between
them, `sources.plan_sources`; pages summarized together that do not fit are read through
notes) → prompts (the pages under numbered headers) → respond (each citation names the page
it quotes, `source`, and for a PDF its page number).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from tiangong.engine.base import (
    ASK,
    SUMMARIZE,
    ChatMessage,
    Engine,
    GenerationParams,
    Job,
    TaskHints,
    TaskKind,
)
from tiangong.pipeline.generate import ReadingProgress, ready_engine, take_notes
from tiangong.pipeline.plan import Plan, page_budget, plan_page
from tiangong.pipeline.prompts import (
    ASK_MAX_TOKENS,
    across_sources,
    ask_messages,
    notes_text,
    summary_hints,
    summary_max_tokens,
    summary_messages,
)
from tiangong.pipeline.read import read_page
from tiangong.pipeline.record import Exchange, new_conversation
from tiangong.pipeline.request import PageDoc, RequestContext
from tiangong.pipeline.respond import announce, page_facts, respond
from tiangong.pipeline.sources import SourcesPlan, plan_sources
from tiangong.protocol.messages import Ask, Summarize

# Longest combined title (the pages' titles joined), in characters.
TITLE_CHARS = 2000


@dataclass(frozen=True)
class Pages:
    """The pages of one request, read, and what the answer is asked to be."""

    req: Summarize | Ask
    docs: tuple[PageDoc, ...]
    title: str

    def messages(self, context: str) -> tuple[ChatMessage, ...]:
        req = self.req
        if isinstance(req, Ask):
            built = ask_messages(
                self.title,
                "",
                context,
                history=(),
                question=req.question,
                output_language=req.output_language,
            )
        else:
            built = summary_messages(self.title, "", context, req.options)
        return across_sources(built, len(self.docs))


async def answer_across_pages(req: Summarize | Ask, ctx: RequestContext) -> None:
    asking = isinstance(req, Ask)
    engine = await ready_engine(ctx, ASK if asking else SUMMARIZE)
    extractor = ctx.resources.extractor
    docs = tuple(
        await asyncio.gather(
            *(read_page(extractor, page, use_selection=not asking) for page in req.pages)
        )
    )
    ctx.check_cancel()
    pages = Pages(req, docs, " · ".join(doc.title or doc.url for doc in docs)[:TITLE_CHARS])
    if isinstance(req, Ask):
        max_new = req.max_tokens or ASK_MAX_TOKENS
        question: str | None = req.question
        user_text = req.question
        hints = TaskHints(output_language=req.output_language, page_lang=docs[0].lang)
    else:
        max_new = summary_max_tokens(req.options)
        question = None
        user_text = f"Summarize {len(docs)} pages ({req.options.type}, {req.options.length})"
        hints = summary_hints(req.options, title=pages.title, page_lang=docs[0].lang)
    budget = page_budget(
        engine.context_tokens,
        answer_tokens=max_new,
        prompt_tokens=engine.count_prompt_tokens(pages.messages("")),
    )
    planned = plan_sources(docs, count_tokens=engine.count_tokens, budget=budget, question=question)
    cite_from = planned.context
    if not asking and any(p.strategy != "whole" for p in planned.plans):
        planned = await _read_through_notes(ctx, engine, pages, planned, budget=budget)
        cite_from = "\n\n".join(doc.text for doc in docs)  # quotes stay verbatim page text
    messages = pages.messages(planned.context)
    kind: TaskKind = "ask" if asking else "summarize"
    combined = PageDoc(
        docs[0].url, pages.title, planned.context, (), docs[0].lang, sum(d.words for d in docs)
    )
    exchange = Exchange(
        conversation=await new_conversation(ctx.resources.store, kind, combined),
        kind=kind,
        user_text=user_text,
        cite_from=cite_from,
        sources=docs,
        supersedes=req.regenerates,
    )
    await announce(
        ctx,
        exchange,
        doc=combined,
        plan=planned.combined,
        prompt_tokens=engine.count_prompt_tokens(messages),
        sources=[page_facts(doc, plan) for doc, plan in zip(docs, planned.plans, strict=True)],
    )
    job = Job(
        kind,
        messages,
        GenerationParams(max_new),
        source_text=planned.context,
        question=question or "",
        hints=hints,
    )
    await respond(ctx, job, exchange)


async def _read_through_notes(
    ctx: RequestContext, engine: Engine, pages: Pages, planned: SourcesPlan, *, budget: int
) -> SourcesPlan:
    """Pages summarized together that do not all fit: every chunk of each page over its share
    is read in one batched map step (background work, `reading` progress), and the page's
    notes stand in for it, so each page is still read whole."""
    docs = pages.docs
    long = [i for i, plan in enumerate(planned.plans) if plan.strategy != "whole"]
    chunks = {
        i: plan_page(docs[i].text, docs[i].blocks, count_tokens=engine.count_tokens, budget=budget)
        for i in long
    }
    texts = {i: [c.text for c in chunks[i].chunks] or [docs[i].text] for i in long}
    progress = ReadingProgress(ctx, sum(len(t) for t in texts.values()))
    await progress.send()
    notes = await asyncio.gather(
        *(take_notes(ctx, engine, docs[i], texts[i], progress=progress) for i in long)
    )
    noted = list(docs)
    for i, page_notes in zip(long, notes, strict=True):
        kept = tuple(n.strip() for n in page_notes if n.strip())
        noted[i] = replace(docs[i], text=notes_text(kept), blocks=kept)
    replanned = plan_sources(noted, count_tokens=engine.count_tokens, budget=budget)
    plans = tuple(
        Plan("map-reduce", plan.context, planned.plans[i].page_tokens, planned.plans[i].page_tokens)
        if i in long and plan.strategy == "whole"
        else plan
        for i, plan in enumerate(replanned.plans)
    )
    return SourcesPlan(plans, replanned.context)

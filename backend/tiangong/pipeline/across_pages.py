"""A summary of, or a question across, several pages at once (`pages`: open tabs, PDFs).

Every page is read (in the extraction workers, side by side), the budget is shared between
them (sources.plan_sources), the model reads them under numbered headers, and each citation
names the page it quotes (`source`) and, for a PDF, its page number.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from tiangong.engine.base import (
    ASK,
    SUMMARIZE,
    CancelToken,
    ChatMessage,
    Engine,
    GenerationParams,
    Job,
    TaskKind,
)
from tiangong.pipeline.plan import Plan, plan_page
from tiangong.pipeline.prompts import (
    ASK_MAX_TOKENS,
    across_sources,
    ask_messages,
    notes_text,
    summary_max_tokens,
    summary_messages,
)
from tiangong.pipeline.request import Emit, Exchange, PageDoc, ReadingProgress, check_cancel
from tiangong.pipeline.sources import SourcesPlan, plan_sources, start_sources
from tiangong.protocol.messages import Ask, Summarize

if TYPE_CHECKING:
    from tiangong.pipeline.service import Service


async def answer_across_pages(
    service: Service, req: Summarize | Ask, emit: Emit, cancel: CancelToken
) -> None:
    started = time.monotonic()
    asking = isinstance(req, Ask)
    engine = await service._engine_for(req.id, ASK if asking else SUMMARIZE, emit, cancel)
    docs = tuple(
        await asyncio.gather(
            *(service.read_page(page, use_selection=not asking) for page in req.pages)
        )
    )
    check_cancel(cancel)
    title = " · ".join(doc.title or doc.url for doc in docs)[:2000]
    url = docs[0].url

    def messages_for(context: str) -> tuple[ChatMessage, ...]:
        if isinstance(req, Ask):
            built = ask_messages(title, "", context, (), req.question, req.output_language)
        else:
            built = summary_messages(title, "", context, req.options)
        return across_sources(built, len(docs))

    if isinstance(req, Ask):
        max_new = req.max_tokens or ASK_MAX_TOKENS
        question: str | None = req.question
        user_text = req.question
        options = {"output_language": req.output_language, "page_lang": docs[0].lang}
    else:
        max_new = summary_max_tokens(req.options)
        question = None
        user_text = f"Summarize {len(docs)} pages ({req.options.type}, {req.options.length})"
        options = {
            "type": req.options.type,
            "length": req.options.length,
            "format": req.options.format,
            "output_language": req.options.output_language,
            "title": title,
            "page_lang": docs[0].lang,
        }
    overhead = engine.count_prompt_tokens(messages_for(""))
    budget = service._budget(engine, max_new, overhead)
    planned = plan_sources(docs, count_tokens=engine.count_tokens, budget=budget, question=question)
    cite_from = planned.context
    if not asking and any(p.strategy != "whole" for p in planned.plans):
        planned = await _read_through_notes(
            service, req.id, docs, planned, engine, budget, emit, cancel
        )
        cite_from = "\n\n".join(doc.text for doc in docs)  # quotes stay verbatim page text
    messages = messages_for(planned.context)
    kind: TaskKind = "ask" if asking else "summarize"
    conv = await service.store.run(
        service.store.create_conversation,
        kind=kind,
        url=url,
        title=title,
        page_text=planned.context,
        page_lang=docs[0].lang,
    )
    job = Job(kind, messages, GenerationParams(max_new), planned.context, question or "", options)
    exchange = Exchange(conv, kind, user_text, cite_from, docs, req.regenerates)
    combined = PageDoc(url, title, planned.context, (), docs[0].lang, sum(d.words for d in docs))
    frame = service._start_frame(req.id, conv.id, combined, planned.combined, engine, messages)
    frame["page"]["sources"] = start_sources(docs, planned)
    await emit(frame)
    await service._generate(req.id, job, exchange, emit, cancel, started)


async def _read_through_notes(
    service: Service,
    request_id: str,
    docs: tuple[PageDoc, ...],
    planned: SourcesPlan,
    engine: Engine,
    budget: int,
    emit: Emit,
    cancel: CancelToken,
) -> SourcesPlan:
    """Pages summarized together that do not all fit: every chunk of each page over its share
    is read in one batched map step (background work, `reading` progress), and the page's
    notes stand in for it, so each page is still read whole."""
    long = [i for i, plan in enumerate(planned.plans) if plan.strategy != "whole"]
    chunks = {
        i: plan_page(docs[i].text, docs[i].blocks, count_tokens=engine.count_tokens, budget=budget)
        for i in long
    }
    texts = {i: [c.text for c in chunks[i].chunks] or [docs[i].text] for i in long}
    progress = ReadingProgress(request_id, emit, sum(len(t) for t in texts.values()))
    await progress.send()
    notes = await asyncio.gather(
        *(service._map(texts[i], docs[i], engine, cancel, progress) for i in long)
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

"""Task: a summary of, or a question across, several pages at once (`pages`: open tabs, PDFs).

read (every page, in the extraction workers side by side) → for a small model, each page's
evidence or key sentences, restated and checked (`compose`); else plan (the budget shared
between them, `sources.plan_sources`; pages summarized together that do not fit are read
through notes) → prompts (the pages under numbered headers) → respond (each citation names
the page it quotes, `source`, and for a PDF its page number).
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
from tiangong.pipeline.compose import (
    answer_from_evidence,
    answer_language,
    summary_from_sentences,
)
from tiangong.pipeline.evidence import across, gather_evidence
from tiangong.pipeline.generate import Answer, ReadingProgress, ready_engine, take_notes
from tiangong.pipeline.key_points import key_sentences
from tiangong.pipeline.plan import Plan, evidence_plan, page_budget, plan_page
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
from tiangong.pipeline.respond import Produce, announce, page_facts, respond, respond_with
from tiangong.pipeline.sources import SourcesPlan, plan_sources, source_header
from tiangong.pipeline.summaries import SUMMARY_SENTENCES
from tiangong.protocol.messages import Ask, Summarize

# Longest combined title (the pages' titles joined), in characters.
TITLE_CHARS = 2000
# Evidence sentences (each with the next) taken from each page for a question across pages.
PAGE_EVIDENCE = 2


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
    if ctx.reading(engine) == "evidence":
        await _from_evidence(ctx, engine, pages)
        return
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
    exchange = await _announced(
        ctx,
        pages,
        planned,
        user_text=user_text,
        cite_from=cite_from,
        prompt_tokens=engine.count_prompt_tokens(messages),
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


async def _announced(
    ctx: RequestContext,
    pages: Pages,
    planned: SourcesPlan,
    *,
    user_text: str,
    cite_from: str,
    prompt_tokens: int,
) -> Exchange:
    """The conversation the answer is stored in, and the `start` frame naming every page."""
    docs = pages.docs
    kind: TaskKind = "ask" if isinstance(pages.req, Ask) else "summarize"
    combined = PageDoc(
        docs[0].url, pages.title, planned.context, (), docs[0].lang, sum(d.words for d in docs)
    )
    exchange = Exchange(
        conversation=await new_conversation(ctx.resources.store, kind, combined),
        kind=kind,
        user_text=user_text,
        cite_from=cite_from,
        sources=docs,
        supersedes=pages.req.regenerates,
    )
    await announce(
        ctx,
        exchange,
        doc=combined,
        plan=planned.combined,
        prompt_tokens=prompt_tokens,
        sources=[page_facts(doc, plan) for doc, plan in zip(docs, planned.plans, strict=True)],
    )
    return exchange


async def _from_evidence(ctx: RequestContext, engine: Engine, pages: Pages) -> None:
    """A small model across pages: for a question, every page's evidence (the best sentence
    of the page that answers best quoted when the model's answer fails the check); for a
    summary, the sentences that carry each page, each line marked with its page's number."""
    req, docs = pages.req, pages.docs
    count = engine.count_tokens
    produce: Produce
    if isinstance(req, Ask):
        question = req.question
        found = [gather_evidence(d.text, question, count=PAGE_EVIDENCE) for d in docs]
        plans = [evidence_plan(d.text, e.passages, count) for d, e in zip(docs, found, strict=True)]
        evidence = across(found)
        user_text = question
        language = answer_language(question, docs[0].lang, req.output_language)

        async def produce(answer: Answer) -> None:
            await answer_from_evidence(
                ctx,
                answer,
                evidence=evidence,
                question=question,
                language=language,
                output_language=req.output_language,
                page_lang=docs[0].lang,
            )
    else:
        options = req.options
        wanted = SUMMARY_SENTENCES[options.type][options.length]
        each = max(1, -(-wanted // len(docs)))  # every page gets its share, rounded up
        chosen = [key_sentences(d.text, each) for d in docs]
        plans = [
            evidence_plan(d.text, [s.text for s in c], count)
            for d, c in zip(docs, chosen, strict=True)
        ]
        spans = [s for c in chosen for s in c]
        labels = [f"[{i + 1}]" for i, c in enumerate(chosen) for _ in c]
        user_text = f"Summarize {len(docs)} pages ({options.type}, {options.length})"

        async def produce(answer: Answer) -> None:
            await summary_from_sentences(
                ctx,
                engine,
                answer,
                chosen=spans,
                page_text="\n\n".join(d.text for d in docs),
                options=options,
                labels=labels,
            )

    context = "\n\n".join(
        f"{source_header(i, doc)}\n\n{plan.context}"
        for i, (doc, plan) in enumerate(zip(docs, plans, strict=True))
    )
    planned = SourcesPlan(tuple(plans), context)
    exchange = await _announced(
        ctx,
        pages,
        planned,
        user_text=user_text,
        cite_from=context,
        prompt_tokens=planned.used_tokens,
    )
    await respond_with(ctx, exchange, produce)


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

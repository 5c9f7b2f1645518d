"""A summary of one page, however it was asked for (the Summarize button, or "What is this page
about?" in the chat), written the way the engine's model reads best.

- evidence (a small model): the sentences that carry the page, each rewritten shorter and
  checked (`compose.summary_from_sentences`);
- page: the whole page when it fits; else map-reduce: notes on every part, condensed in
  rounds while they do not fit, then the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tiangong.engine.base import SUMMARIZE, ChatMessage, Engine, GenerationParams, Job
from tiangong.pipeline.compose import summary_from_sentences
from tiangong.pipeline.generate import Answer, ReadingProgress, take_notes
from tiangong.pipeline.key_points import key_sentences
from tiangong.pipeline.plan import Plan, evidence_plan, group_notes, page_budget, plan_page
from tiangong.pipeline.prompts import (
    map_messages,
    notes_text,
    reduce_messages,
    summary_hints,
    summary_max_tokens,
    summary_messages,
)
from tiangong.pipeline.record import Exchange
from tiangong.pipeline.request import PageDoc, RequestContext
from tiangong.pipeline.respond import announce, respond, respond_with
from tiangong.protocol.messages import SummarizeOptions

# How many of the page's sentences a summary written from them is made of.
SUMMARY_SENTENCES = {
    "key-points": {"short": 3, "medium": 5, "long": 7},
    "tldr": {"short": 2, "medium": 3, "long": 5},
    "teaser": {"short": 2, "medium": 2, "long": 3},
    "headline": {"short": 1, "medium": 1, "long": 1},
}


@dataclass(frozen=True)
class Summary:
    """One summary under way: of which page, in what shape, by which engine, stored where."""

    doc: PageDoc
    options: SummarizeOptions
    engine: Engine
    exchange: Exchange  # its `cite_from` is set here, from what the model reads

    @property
    def max_new(self) -> int:
        return summary_max_tokens(self.options)


async def write_summary(ctx: RequestContext, summary: Summary) -> None:
    """`start`, the summary streamed, its citations, `done`."""
    engine = summary.engine
    if ctx.reading(engine) == "evidence" and SUMMARIZE in engine.capabilities:
        await _from_key_sentences(ctx, summary)
        return
    doc, options = summary.doc, summary.options
    around = summary_messages(doc.title, doc.url, "", options)
    budget = page_budget(
        engine.context_tokens,
        answer_tokens=summary.max_new,
        prompt_tokens=engine.count_prompt_tokens(around),
    )
    plan = plan_page(doc.text, doc.blocks, count_tokens=engine.count_tokens, budget=budget)
    if plan.strategy == "map-reduce":
        await _summarize_long(ctx, summary, plan)
        return
    messages = summary_messages(doc.title, doc.url, plan.context, options)
    exchange = replace(summary.exchange, cite_from=plan.context)
    await announce(
        ctx, exchange, doc=doc, plan=plan, prompt_tokens=engine.count_prompt_tokens(messages)
    )
    await respond(ctx, _job(summary, messages, source_text=plan.context), exchange)


async def _from_key_sentences(ctx: RequestContext, summary: Summary) -> None:
    doc, options, engine = summary.doc, summary.options, summary.engine
    count = SUMMARY_SENTENCES[options.type][options.length]
    chosen = key_sentences(doc.text, count)
    plan = evidence_plan(doc.text, [s.text for s in chosen], engine.count_tokens)
    exchange = replace(summary.exchange, cite_from=doc.text)
    await announce(ctx, exchange, doc=doc, plan=plan, prompt_tokens=plan.used_tokens)

    async def produce(answer: Answer) -> None:
        await summary_from_sentences(
            ctx,
            engine,
            answer,
            chosen=chosen,
            page_text=doc.text,
            options=options,
        )

    await respond_with(ctx, exchange, produce)


async def _summarize_long(ctx: RequestContext, summary: Summary, plan: Plan) -> None:
    """Map-reduce: notes on every chunk (batched, with progress), then the summary."""
    doc, engine = summary.doc, summary.engine
    exchange = replace(summary.exchange, cite_from=doc.text)
    first = map_messages(doc.title, doc.url, plan.chunks[0].text, part=1, parts=len(plan.chunks))
    await announce(
        ctx, exchange, doc=doc, plan=plan, prompt_tokens=engine.count_prompt_tokens(first)
    )
    texts = [c.text for c in plan.chunks]
    progress = ReadingProgress(ctx, len(texts))
    await progress.send()
    notes = await take_notes(ctx, engine, doc, texts, progress=progress)
    around = reduce_messages(doc.title, doc.url, [], summary.options)
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
    messages = reduce_messages(doc.title, doc.url, notes, summary.options)
    await respond(ctx, _job(summary, messages, source_text=doc.text), exchange)


def _job(summary: Summary, messages: tuple[ChatMessage, ...], *, source_text: str) -> Job:
    doc = summary.doc
    return Job(
        "summarize",
        messages,
        GenerationParams(summary.max_new),
        source_text=source_text,
        hints=summary_hints(summary.options, title=doc.title, page_lang=doc.lang),
    )

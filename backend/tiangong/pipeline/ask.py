"""Task: a question about one page, alone or following up earlier turns of a conversation.

(the conversation and its history) → read (a page sent again replaces the stored one) →
intent (a request for a summary gets one: `summaries`) → for a small model, the evidence
(the passages that answer, ranked with the conversation's earlier question) restated and
checked (`compose`); else prompts (the history that fits) → plan (retrieval when the page
does not fit) → respond.
"""

from __future__ import annotations

from dataclasses import replace

from tiangong.engine.base import ASK, ChatMessage, Engine, GenerationParams, Job, TaskHints
from tiangong.errors import BadRequestError
from tiangong.pipeline.compose import answer_from_evidence, answer_language
from tiangong.pipeline.evidence import gather_evidence
from tiangong.pipeline.generate import Answer, ready_engine
from tiangong.pipeline.intent import asks_for_summary
from tiangong.pipeline.plan import evidence_plan, page_budget, plan_page
from tiangong.pipeline.prompts import ASK_MAX_TOKENS, PriorTurn, ask_messages, fit_history
from tiangong.pipeline.read import read_page
from tiangong.pipeline.record import Exchange, new_conversation
from tiangong.pipeline.request import PageDoc, RequestContext, doc_from_text
from tiangong.pipeline.respond import announce, respond, respond_with
from tiangong.pipeline.summaries import Summary, write_summary
from tiangong.protocol.messages import Ask, SummarizeOptions
from tiangong.store.history import Conversation

# Longest selection quoted into the question, in characters.
SELECTION_CHARS = 4000


async def ask(req: Ask, ctx: RequestContext) -> None:
    engine = await ready_engine(ctx, ASK)
    store = ctx.resources.store
    conv: Conversation | None = None
    history: list[PriorTurn] = []
    if req.conversation_id:
        conv = await store.run(store.get_conversation, req.conversation_id)
        if conv is None:
            raise BadRequestError(f"conversation {req.conversation_id!r} is not known here")
        turns = await store.run(store.turns, conv.id)
        # The answer being regenerated (and its question) is not part of the history.
        history = [
            PriorTurn(t.role, t.text)
            for t in turns
            if t.text and (req.regenerates is None or t.request_id != req.regenerates)
        ]
    doc: PageDoc
    if req.page is not None:
        doc = await read_page(ctx.resources.extractor, req.page, use_selection=False)
        ctx.check_cancel()
        if conv is None:
            conv = await new_conversation(store, "ask", doc)
        else:
            await store.run(
                store.update_page,
                conv.id,
                url=doc.url,
                title=doc.title,
                page_text=doc.text,
                page_lang=doc.lang,
            )
    else:
        assert conv is not None  # the schema requires page or conversation_id
        doc = doc_from_text(conv.url, conv.title, conv.page_text, conv.page_lang)
    exchange = Exchange(
        conversation=conv,
        kind="ask",
        user_text=req.question,
        cite_from=None,
        sources=(doc,),
        supersedes=req.regenerates,
    )
    if asks_for_summary(req.question):
        options = SummarizeOptions(output_language=req.output_language)
        await write_summary(ctx, Summary(doc, options, engine, exchange))
        return
    if ctx.reading(engine) == "evidence":
        earlier = [t.text for t in history if t.role == "user"]
        await _answer_from_evidence(ctx, req, engine, doc, exchange, earlier)
        return
    question = req.question
    if req.page is not None and req.page.selection:
        selection = req.page.selection.strip()[:SELECTION_CHARS]
        question += f"\n\n(About this passage I selected: «{selection}»)"
    max_new = req.max_tokens or ASK_MAX_TOKENS
    history = fit_history(history, engine.count_tokens, engine.context_tokens // 3)

    def messages_with(page_text: str) -> tuple[ChatMessage, ...]:
        return ask_messages(
            doc.title,
            doc.url,
            page_text,
            history=history,
            question=question,
            output_language=req.output_language,
        )

    around = messages_with("")
    budget = page_budget(
        engine.context_tokens,
        answer_tokens=max_new,
        prompt_tokens=engine.count_prompt_tokens(around),
    )
    plan = plan_page(
        doc.text, doc.blocks, count_tokens=engine.count_tokens, budget=budget, question=req.question
    )
    messages = messages_with(plan.context)
    job = Job(
        "ask",
        messages,
        GenerationParams(max_new),
        source_text=plan.context,
        question=req.question,
        hints=TaskHints(output_language=req.output_language, page_lang=doc.lang),
    )
    exchange = replace(exchange, cite_from=plan.context)
    await announce(
        ctx, exchange, doc=doc, plan=plan, prompt_tokens=engine.count_prompt_tokens(messages)
    )
    await respond(ctx, job, exchange)


async def _answer_from_evidence(
    ctx: RequestContext,
    req: Ask,
    engine: Engine,
    doc: PageDoc,
    exchange: Exchange,
    earlier: list[str],
) -> None:
    """A small model's answer: only the passages that answer, restated and checked."""
    question = req.question
    if req.page is not None and req.page.selection:
        # A question about a selected passage is answered from that passage.
        question += " " + req.page.selection.strip()[:SELECTION_CHARS]
    evidence = gather_evidence(doc.text, question, earlier=earlier)
    plan = evidence_plan(doc.text, evidence.passages, engine.count_tokens)
    exchange = replace(exchange, cite_from=plan.context)
    await announce(ctx, exchange, doc=doc, plan=plan, prompt_tokens=plan.used_tokens)
    language = answer_language(req.question, doc.lang, req.output_language)

    async def produce(answer: Answer) -> None:
        await answer_from_evidence(
            ctx,
            answer,
            evidence=evidence,
            question=req.question,
            language=language,
            output_language=req.output_language,
            page_lang=doc.lang,
        )

    await respond_with(ctx, exchange, produce)

"""One request end to end: read the page → plan → prompts → scheduler → store → frames.

Knows no transport: the WebSocket handler and the command line both call `Service.handle`
with an `emit` coroutine that delivers frames. Every frame about a request carries its id;
every finished answer is committed to the store before `done` is emitted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable, Sequence
from typing import Any

from tiangong.engine.base import (
    ASK,
    REWRITE,
    SUMMARIZE,
    CancelToken,
    ChatMessage,
    Delta,
    Engine,
    Finish,
    GenerationParams,
    Job,
    TaskKind,
)
from tiangong.errors import BadRequestError, TiangongError, TooLargeError, UnsupportedError
from tiangong.extract.lang import detect_language
from tiangong.extract.worker import ExtractionWorker
from tiangong.logs import bind_request
from tiangong.pipeline.across_pages import answer_across_pages
from tiangong.pipeline.cite import find_citations
from tiangong.pipeline.plan import Plan, group_notes, plan_page
from tiangong.pipeline.prompts import (
    ASK_MAX_TOKENS,
    MAP_MAX_TOKENS,
    PriorTurn,
    ask_messages,
    map_messages,
    notes_text,
    reduce_messages,
    rewrite_max_tokens,
    rewrite_messages,
    summary_max_tokens,
    summary_messages,
)
from tiangong.pipeline.request import (
    Emit,
    Exchange,
    PageDoc,
    ReadingProgress,
    RequestCancelled,
    check_cancel,
    doc_from_text,
    done_frame,
    fit_history,
)
from tiangong.pipeline.sources import locate
from tiangong.protocol.messages import Ask, History, Page, Rewrite, Summarize
from tiangong.serving.host import EngineHost
from tiangong.serving.scheduler import Scheduler
from tiangong.store.history import Conversation, HistoryStore, new_turn

# Tokens kept free between the prompt and the answer budget (template quirks, rounding).
MARGIN_TOKENS = 16


class Service:
    def __init__(
        self,
        host: EngineHost,
        scheduler: Scheduler,
        store: HistoryStore,
        extractor: ExtractionWorker,
    ) -> None:
        self.host = host
        self.scheduler = scheduler
        self.store = store
        self.extractor = extractor
        # Told the wire code of every request that ends in an error (metrics).
        self.on_error: Callable[[str], None] = lambda code: None

    async def handle(
        self, message: Summarize | Ask | Rewrite | History, emit: Emit, cancel: CancelToken
    ) -> None:
        started = time.monotonic()
        bind_request(message.id)
        try:
            if isinstance(message, History):
                await emit(await self.history(message))
            elif isinstance(message, Summarize | Ask) and message.pages:
                await answer_across_pages(self, message, emit, cancel)
            elif isinstance(message, Summarize):
                await self.summarize(message, emit, cancel)
            elif isinstance(message, Ask):
                await self.ask(message, emit, cancel)
            else:
                await self.rewrite(message, emit, cancel)
        except RequestCancelled:
            await emit(done_frame(message.id, None, Finish("cancelled", 0, 0), None, started))
        except TiangongError as exc:
            exc.request_id = message.id
            self.on_error(exc.code)
            raise
        except Exception:
            self.on_error("internal")
            raise

    # -- requests ---------------------------------------------------------------------------

    async def summarize(self, req: Summarize, emit: Emit, cancel: CancelToken) -> None:
        started = time.monotonic()
        engine = await self._engine_for(req.id, SUMMARIZE, emit, cancel)
        doc = await self.read_page(req.page, use_selection=True)
        check_cancel(cancel)
        max_new = summary_max_tokens(req.options)
        overhead = engine.count_prompt_tokens(summary_messages(doc.title, doc.url, "", req.options))
        plan = plan_page(
            doc.text,
            doc.blocks,
            count_tokens=engine.count_tokens,
            budget=self._budget(engine, max_new, overhead),
        )
        if plan.strategy == "map-reduce":
            await self._summarize_long(req, doc, plan, engine, max_new, emit, cancel, started)
            return
        messages = summary_messages(doc.title, doc.url, plan.context, req.options)
        conv = await self._new_conversation("summarize", doc)
        job = Job(
            "summarize", messages, GenerationParams(max_new), plan.context, "", _options(req, doc)
        )
        exchange = Exchange(
            conv,
            "summarize",
            _summary_request_text(req, doc),
            plan.context,
            (doc,),
            req.regenerates,
        )
        await emit(self._start_frame(req.id, conv.id, doc, plan, engine, messages))
        await self._generate(req.id, job, exchange, emit, cancel, started)

    async def _summarize_long(
        self,
        req: Summarize,
        doc: PageDoc,
        plan: Plan,
        engine: Engine,
        max_new: int,
        emit: Emit,
        cancel: CancelToken,
        started: float,
    ) -> None:
        """Map-reduce: notes on every chunk (batched, with progress), then the summary."""
        conv = await self._new_conversation("summarize", doc)
        first = map_messages(doc.title, doc.url, plan.chunks[0].text, 1, len(plan.chunks))
        await emit(self._start_frame(req.id, conv.id, doc, plan, engine, first))
        texts = [c.text for c in plan.chunks]
        progress = ReadingProgress(req.id, emit, len(texts))
        await progress.send()
        notes = await self._map(texts, doc, engine, cancel, progress)
        overhead = engine.count_prompt_tokens(reduce_messages(doc.title, doc.url, [], req.options))
        budget = self._budget(engine, max_new, overhead)
        groups = group_notes(notes, engine.count_tokens, budget)
        while len(groups) > 1:  # notes too long for one reduce: condense them in rounds
            merged = [notes_text(g) for g in groups]
            progress.total += len(merged)
            notes = await self._map(merged, doc, engine, cancel, progress)
            groups = group_notes(notes, engine.count_tokens, budget)
        messages = reduce_messages(doc.title, doc.url, notes, req.options)
        job = Job(
            "summarize", messages, GenerationParams(max_new), doc.text, "", _options(req, doc)
        )
        exchange = Exchange(
            conv, "summarize", _summary_request_text(req, doc), doc.text, (doc,), req.regenerates
        )
        await self._generate(req.id, job, exchange, emit, cancel, started)

    async def _map(
        self,
        texts: list[str],
        doc: PageDoc,
        engine: Engine,
        cancel: CancelToken,
        progress: ReadingProgress,
    ) -> list[str]:
        """Notes on each text, run as background work; `engine.max_concurrency` at once."""
        notes = [""] * len(texts)
        limit = asyncio.Semaphore(max(1, engine.max_concurrency))

        async def one(i: int) -> None:
            async with limit:
                messages = map_messages(doc.title, doc.url, texts[i], i + 1, len(texts))
                params = GenerationParams(MAP_MAX_TOKENS)
                job = Job("summarize", messages, params, texts[i], "", {"priority": "background"})
                parts: list[str] = []
                async for event in self.scheduler.stream(job, cancel):
                    if isinstance(event, Delta):
                        parts.append(event.text)
                    elif event.finish_reason == "cancelled":
                        raise RequestCancelled
            notes[i] = "".join(parts)
            progress.done += 1
            await progress.send()

        try:
            async with asyncio.TaskGroup() as group:
                for i in range(len(texts)):
                    group.create_task(one(i))
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None
        check_cancel(cancel)
        return notes

    async def ask(self, req: Ask, emit: Emit, cancel: CancelToken) -> None:
        started = time.monotonic()
        engine = await self._engine_for(req.id, ASK, emit, cancel)
        conv: Conversation | None = None
        history: list[PriorTurn] = []
        if req.conversation_id:
            conv = await self.store.run(self.store.get_conversation, req.conversation_id)
            if conv is None:
                raise BadRequestError(f"conversation {req.conversation_id!r} is not known here")
            turns = await self.store.run(self.store.turns, conv.id)
            # The answer being regenerated (and its question) is not part of the history.
            history = [
                PriorTurn(t.role, t.text)
                for t in turns
                if t.text and (req.regenerates is None or t.request_id != req.regenerates)
            ]
        if req.page is not None:
            doc = await self.read_page(req.page, use_selection=False)
            check_cancel(cancel)
            if conv is None:
                conv = await self._new_conversation("ask", doc)
            else:
                await self.store.run(
                    self.store.update_page,
                    conv.id,
                    url=doc.url,
                    title=doc.title,
                    page_text=doc.text,
                    page_lang=doc.lang,
                )
        else:
            assert conv is not None  # the schema requires page or conversation_id
            doc = doc_from_text(conv.url, conv.title, conv.page_text, conv.page_lang)
        question = req.question
        if req.page is not None and req.page.selection:
            question += (
                f"\n\n(About this passage I selected: «{req.page.selection.strip()[:4000]}»)"
            )
        max_new = req.max_tokens or ASK_MAX_TOKENS
        history = fit_history(history, engine, engine.context_tokens // 3)
        overhead = engine.count_prompt_tokens(
            ask_messages(doc.title, doc.url, "", history, question, req.output_language)
        )
        plan = plan_page(
            doc.text,
            doc.blocks,
            count_tokens=engine.count_tokens,
            budget=self._budget(engine, max_new, overhead),
            question=req.question,
        )
        messages = ask_messages(
            doc.title, doc.url, plan.context, history, question, req.output_language
        )
        options = {"output_language": req.output_language, "page_lang": doc.lang}
        job = Job("ask", messages, GenerationParams(max_new), plan.context, req.question, options)
        exchange = Exchange(conv, "ask", req.question, plan.context, (doc,), req.regenerates)
        await emit(self._start_frame(req.id, conv.id, doc, plan, engine, messages))
        await self._generate(req.id, job, exchange, emit, cancel, started)

    async def rewrite(self, req: Rewrite, emit: Emit, cancel: CancelToken) -> None:
        started = time.monotonic()
        engine = await self._engine_for(req.id, REWRITE, emit, cancel)
        text_tokens = engine.count_tokens(req.text)
        max_new = rewrite_max_tokens(text_tokens, req.options)
        context = req.context
        source_lang = detect_language(req.text)
        if req.options.task == "translate" and not req.options.output_language:
            raise BadRequestError("options.output_language: name the language to translate into")
        messages = rewrite_messages(req.text, context, req.options, source_lang)
        prompt_tokens = engine.count_prompt_tokens(messages)
        if prompt_tokens + max_new > engine.context_tokens and context:
            context = None  # the surrounding passage is a nicety; the text itself is not
            messages = rewrite_messages(req.text, None, req.options, source_lang)
            prompt_tokens = engine.count_prompt_tokens(messages)
        if prompt_tokens + max_new > engine.context_tokens:
            raise TooLargeError(
                f"the text is {text_tokens} tokens; this model rewrites at most about "
                f"{engine.context_tokens // 3} at once"
            )
        title = ("Translate: " if req.options.task == "translate" else "Rewrite: ") + " ".join(
            req.text.split()[:8]
        )
        doc = doc_from_text("", title, req.text, source_lang)
        conv = await self._new_conversation("rewrite", doc)
        plan = Plan("whole", req.text, text_tokens, text_tokens)
        options = {"tone": req.options.tone, "length": req.options.length}
        job = Job("rewrite", messages, GenerationParams(max_new), req.text, "", options)
        exchange = Exchange(conv, "rewrite", req.text, None, (), req.regenerates)
        await emit(self._start_frame(req.id, conv.id, doc, plan, engine, messages))
        await self._generate(req.id, job, exchange, emit, cancel, started)

    async def history(self, req: History) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "history", "id": req.id}
        if req.request_id is not None:
            conv_id = await self.store.run(
                self.store.conversation_of_request, req.request_id, req.conversation_id
            )
            if conv_id is None:
                raise BadRequestError(f"no stored answer for request {req.request_id!r}")
            conv = await self.store.run(self.store.get_conversation, conv_id)
            turns = await self.store.run(self.store.turns, conv_id, superseded=True)
            assert conv is not None
            frame["conversation"] = conv.summary()
            frame["turns"] = [t.to_wire() for t in turns if t.request_id == req.request_id]
            return frame
        if req.conversation_id is None:
            convs = await self.store.run(self.store.list_conversations, req.limit)
            frame["conversations"] = [c.summary() for c in convs]
            return frame
        conv = await self.store.run(self.store.get_conversation, req.conversation_id)
        if conv is None:
            raise BadRequestError(f"conversation {req.conversation_id!r} is not known here")
        turns = await self.store.run(self.store.turns, conv.id)
        frame["conversation"] = conv.summary()
        frame["turns"] = [t.to_wire() for t in turns[-req.limit * 2 :]]
        return frame

    # -- shared steps -----------------------------------------------------------------------

    async def read_page(self, page: Page, *, use_selection: bool) -> PageDoc:
        """The text a request works on: the selection, the extracted article, or given text."""
        if use_selection and page.selection:
            return doc_from_text(page.url, page.title, page.selection, page.lang, selection=True)
        if page.pdf is not None:
            return await self._read_pdf(page)
        if page.html is not None and page.html.strip():
            article = await self.extractor.extract(page.html, page.url or None)
            doc = PageDoc(
                url=page.url,
                title=article.title or page.title,
                text=article.text,
                blocks=tuple(article.blocks),
                lang=article.lang or page.lang,
                words=article.words,
            )
        else:
            doc = doc_from_text(page.url, page.title, page.text or "", page.lang)
        if not doc.text.strip():
            raise BadRequestError("the page has no readable text")
        return doc

    async def _read_pdf(self, page: Page) -> PageDoc:
        assert page.pdf is not None
        try:
            data = base64.b64decode(page.pdf, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequestError("page.pdf is not valid base64") from None
        pdf = await self.extractor.extract_pdf(data)
        title = page.title if page.title and pdf.title == pdf.blocks[0][:200] else pdf.title
        return PageDoc(
            page.url,
            title or page.title,
            pdf.text,
            pdf.blocks,
            pdf.lang or page.lang,
            pdf.words,
            pdf=pdf,
        )

    async def _new_conversation(self, kind: TaskKind, doc: PageDoc) -> Conversation:
        return await self.store.run(
            self.store.create_conversation,
            kind=kind,
            url=doc.url,
            title=doc.title,
            page_text=doc.text,
            page_lang=doc.lang,
        )

    async def _engine_for(
        self, request_id: str, capability: str, emit: Emit, cancel: CancelToken
    ) -> Engine:
        while not self.host.ready:
            if cancel.cancelled:
                raise RequestCancelled
            stage, done, total = self.host.loading or ("loading_model", 0, 0)
            await emit(
                {"type": "progress", "id": request_id, "stage": stage, "done": done, "total": total}
            )
            try:
                await asyncio.wait_for(asyncio.shield(self.host.get()), 0.5)
            except TimeoutError:
                continue
        engine = await self.host.get()
        if capability not in engine.capabilities:
            raise UnsupportedError(
                f"the {engine.name} engine cannot {capability}"
                + (": it needs a model" if engine.name == "extractive" else "")
            )
        return engine

    def _budget(self, engine: Engine, max_new: int, overhead: int) -> int:
        budget = engine.context_tokens - max_new - overhead - MARGIN_TOKENS
        if budget < 64:
            raise TooLargeError(
                f"the question and history leave no room for the page in a {engine.context_tokens}"
                "-token context; start a new conversation"
            )
        return budget

    def _start_frame(
        self,
        request_id: str,
        conversation_id: str,
        doc: PageDoc,
        plan: Plan,
        engine: Engine,
        messages: Sequence[ChatMessage],
    ) -> dict[str, Any]:
        strategy = "selection" if doc.from_selection and plan.strategy == "whole" else plan.strategy
        return {
            "type": "start",
            "id": request_id,
            "conversation_id": conversation_id,
            "page": {
                "title": doc.title,
                "url": doc.url,
                "words": doc.words,
                "tokens": plan.page_tokens,
                "lang": doc.lang,
                **({"pages": doc.pdf.page_count} if doc.pdf is not None else {}),
                "plan": {
                    "strategy": strategy,
                    "coverage": plan.coverage,
                    "prompt_tokens": engine.count_prompt_tokens(tuple(messages)),
                },
            },
        }

    async def _generate(
        self,
        request_id: str,
        job: Job,
        exchange: Exchange,
        emit: Emit,
        cancel: CancelToken,
        started: float,
    ) -> None:
        parts: list[str] = []
        first_token: float | None = None
        finish: Finish | None = None

        async def queued(position: int) -> None:
            await emit(
                {
                    "type": "progress",
                    "id": request_id,
                    "stage": "queued",
                    "done": 0,
                    "total": position,
                }
            )

        try:
            async for event in self.scheduler.stream(job, cancel, on_wait=queued):
                if isinstance(event, Delta):
                    if first_token is None:
                        first_token = time.monotonic()
                    parts.append(event.text)
                    await emit({"type": "delta", "id": request_id, "text": event.text})
                else:
                    finish = event
        except BaseException as exc:
            # The partial answer is kept, marked incomplete, whatever broke it.
            await asyncio.shield(self._store(exchange, request_id, "".join(parts), "error", []))
            if isinstance(exc, TiangongError):
                exc.request_id = request_id
            raise
        assert finish is not None
        answer = "".join(parts)
        citations = []
        if finish.finish_reason != "cancelled" and exchange.cite_from:
            found = find_citations(answer, exchange.cite_from)
            citations = [
                {"n": c.n, "quote": c.quote, **locate(c.quote, exchange.sources)} for c in found
            ]
        await asyncio.shield(
            self._store(exchange, request_id, answer, finish.finish_reason, citations)
        )
        for citation in citations:
            await emit({"type": "citation", "id": request_id, **citation})
        await emit(done_frame(request_id, exchange.conversation.id, finish, first_token, started))

    async def _store(
        self,
        exchange: Exchange,
        request_id: str,
        answer: str,
        finish_reason: str,
        citations: list[dict[str, Any]],
    ) -> None:
        complete = finish_reason in ("stop", "length")
        user = new_turn("user", exchange.kind, exchange.user_text, request_id=request_id)
        assistant = new_turn(
            "assistant",
            exchange.kind,
            answer,
            request_id=request_id,
            status="complete" if complete else "incomplete",
            finish_reason=finish_reason,
            citations=citations,
        )
        await self.store.run(
            self.store.add_exchange,
            exchange.conversation.id,
            user,
            assistant,
            supersedes=exchange.supersedes,
        )


def _options(req: Summarize, doc: PageDoc) -> dict[str, Any]:
    return {
        "type": req.options.type,
        "length": req.options.length,
        "format": req.options.format,
        "output_language": req.options.output_language,
        "title": doc.title,
        "page_lang": doc.lang,
    }


def _summary_request_text(req: Summarize, doc: PageDoc) -> str:
    what = "selection" if doc.from_selection else "page"
    return f"Summarize the {what} ({req.options.type}, {req.options.length})"

"""Step: answers a small model composes from evidence, checked before a word is shown.

- A question: the model restates the passages that answer it (`evidence`); its answer is
  shown only if the check finds every name, number and content word in the passages or the
  question. Otherwise the best passage sentence is shown instead, as a quote with a short
  lead-in; with no sentence near the question, the page's nearest words, said as such.
- A summary: each sentence that carries the page (`key_points`) is rewritten by the model
  alone, all of them batched; each rewrite is checked against the page and replaced by its
  source sentence (shortened) when it adds words the page does not have or speaks about the
  summary rather than the page.

Either way the answer cites the page sentences it was made from, verbatim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from tiangong.engine.base import Engine, Finish, GenerationParams, Job, TaskHints
from tiangong.extract.lang import detect_language
from tiangong.pipeline.check import (
    adds_to,
    content_words,
    is_meta,
    shorten,
    stem,
    support,
    without_preamble,
)
from tiangong.pipeline.evidence import Evidence, readable_sentences
from tiangong.pipeline.generate import Answer, complete
from tiangong.pipeline.prompts import (
    EVIDENCE_ANSWER_MAX_TOKENS,
    SENTENCE_MAX_TOKENS,
    evidence_answer_messages,
    sentence_messages,
)
from tiangong.pipeline.request import RequestContext
from tiangong.protocol.messages import SummarizeOptions
from tiangong.text import Span, sentences

# A quoted fallback passage longer than this many words is cut.
QUOTE_WORDS = 80
# An answer of fewer words than this is shown with the sentence it restates.
TERSE_WORDS = 4
# A summary bullet that falls back to its source sentence keeps about this many words.
BULLET_WORDS = 30

# "The page says:" and "nearest to your question": in the answer's language.
_SAYS = {
    "en": "The page says:",
    "zh": "页面中写道：",
    "ja": "ページにはこう書かれています：",
    "ko": "페이지 내용:",
    "ru": "На странице сказано:",
    "uk": "На сторінці сказано:",
    "es": "La página dice:",
    "pt": "A página diz:",
    "fr": "La page dit :",
    "de": "Auf der Seite steht:",
    "it": "La pagina dice:",
    "id": "Halaman ini menyebutkan:",
}
_NEAREST = {
    "en": "The page does not say that directly. Nearest to your question, it says:",
    "zh": "页面没有直接说明这一点。与你的问题最接近的内容是：",
    "ja": "ページには直接書かれていません。質問に最も近い箇所：",
    "ko": "페이지에 직접 나와 있지 않습니다. 질문에 가장 가까운 내용:",
    "ru": "На странице об этом прямо не сказано. Ближе всего к вопросу:",
    "uk": "На сторінці про це прямо не сказано. Найближче до питання:",
    "es": "La página no lo dice directamente. Lo más cercano a su pregunta:",
    "pt": "A página não diz isso diretamente. O mais próximo da sua pergunta:",
    "fr": "La page ne le dit pas directement. Le plus proche de votre question :",
    "de": "Die Seite sagt das nicht direkt. Am nächsten an Ihrer Frage:",
    "it": "La pagina non lo dice direttamente. Il punto più vicino alla domanda:",
    "id": "Halaman ini tidak menyebutkannya secara langsung. Yang paling dekat:",
}


def answer_language(question: str, page_lang: str | None, chosen: str | None) -> str:
    """The language an answer is written in: the one the user chose, else the question's
    (which is the page's unless the user asks in another)."""
    if chosen:
        return chosen.lower()
    return (detect_language(question, hint=page_lang) or page_lang or "en").lower()


def _primary(tag: str) -> str:
    return tag.split("-")[0]


def lead_in(language: str, *, near: bool) -> str:
    table = _NEAREST if near else _SAYS
    return table.get(language) or table.get(_primary(language)) or table["en"]


def quoted(sentence: str, language: str, *, near: bool) -> str:
    return f"{lead_in(language, near=near)}\n\n> {shorten(sentence, QUOTE_WORDS)}"


@dataclass
class Usage:
    """Tokens the model read and wrote for a composed answer (its `done` frame's counts)."""

    prompt: int = 0
    completion: int = 0
    cancelled: bool = False

    def add(self, finish: Finish) -> None:
        self.prompt += finish.prompt_tokens
        self.completion += finish.completion_tokens
        self.cancelled = self.cancelled or finish.finish_reason == "cancelled"

    def finish(self) -> Finish:
        return Finish("cancelled" if self.cancelled else "stop", self.prompt, self.completion)


def _said_by_one_passage(answer: str, evidence: Evidence, question: str) -> bool:
    """Whether a sentence about the question, alone or with the one after it, says all of
    `answer`: words gathered from unrelated sentences make a claim the page never made
    ("The Council leads the critics", from a sentence on the council before one on the
    critics)."""
    asked = {stem(w) for w in content_words(question)}
    for passage in evidence.passages:
        spans = readable_sentences(passage) or sentences(passage)
        for i, span in enumerate(spans):
            if asked and not asked & {stem(w) for w in content_words(span.text)}:
                continue
            window = " ".join(s.text for s in spans[i : i + 2])
            if support(answer, [window, question]).supported:
                return True
    return False


def _supporting(answer: str, evidence: Evidence) -> list[str]:
    """The evidence sentences an answer restates, best first (its citations)."""
    spans = readable_sentences(evidence.text) or []
    scored = []
    for span in spans:
        found = support(answer, [span.text])
        if found.words:
            scored.append((len(found.missing) / found.words, span.text))
    scored.sort(key=lambda p: p[0])
    quotes = [text for share, text in scored[:2] if share < 0.7]
    return quotes or [evidence.best]


async def answer_from_evidence(
    ctx: RequestContext,
    answer: Answer,
    *,
    evidence: Evidence,
    question: str,
    language: str,
    output_language: str | None,
    page_lang: str | None,
) -> None:
    """A question answered by a small model from its evidence (see the module docstring)."""
    usage = Usage()
    if evidence.matched:
        job = Job(
            "ask",
            evidence_answer_messages(evidence.text, question, output_language=output_language),
            GenerationParams(EVIDENCE_ANSWER_MAX_TOKENS, stop=("\n\n",)),
            source_text=evidence.text,
            question=question,
            hints=TaskHints(output_language=output_language, page_lang=page_lang),
        )
        text, finish = await complete(ctx, job)
        usage.add(finish)
        if usage.cancelled:
            answer.finish = usage.finish()
            return
        said = without_preamble(text)
        if said and adds_to(said, question) and _said_by_one_passage(said, evidence, question):
            answer.quotes = _supporting(said, evidence)
            if len(said.split()) < TERSE_WORDS:
                # "24." alone says too little: the sentence it comes from says what of.
                said += f"\n\n> {shorten(answer.quotes[0], QUOTE_WORDS)}"
            await answer.say(ctx, said)
            answer.finish = usage.finish()
            return
    # What the page says nearest to the question, quoted (two sentences: an answer often
    # sits in the one after the sentence that names its subject).
    answer.quotes = list(evidence.best_passage)
    if answer.quotes:
        await answer.say(ctx, quoted(" ".join(answer.quotes), language, near=not evidence.matched))
    answer.finish = usage.finish()


SHAPES = {"key-points": "bullet", "tldr": "bullet", "teaser": "bullet", "headline": "headline"}


async def summary_from_sentences(
    ctx: RequestContext,
    engine: Engine,
    answer: Answer,
    *,
    chosen: Sequence[Span],
    page_text: str,
    options: SummarizeOptions,
    labels: Sequence[str] = (),
) -> None:
    """A summary made of `chosen`, each rewritten shorter by the model and checked against
    the page; shown in page order as soon as each one before it is ready. `labels`: what
    each line starts with (the source number of a page read with others)."""
    usage = Usage()
    kind, output_language = options.type, options.output_language
    markdown = options.format != "plain-text"
    shape = SHAPES.get(kind, "bullet")
    sentences = list(chosen[:1] if shape == "headline" else chosen)
    limit = asyncio.Semaphore(max(1, engine.max_concurrency))

    async def rewrite(sentence: str) -> str:
        async with limit:
            job = Job(
                "summarize",
                sentence_messages(sentence, shape=shape, output_language=output_language),
                GenerationParams(SENTENCE_MAX_TOKENS, stop=("\n",)),
                source_text=sentence,
            )
            text, finish = await complete(ctx, job)
        usage.add(finish)
        said = without_preamble(text).strip().strip('"“”').lstrip("-*• ").strip()
        if said and not is_meta(said) and support(said, [page_text]).supported:
            return said
        return shorten(sentence, BULLET_WORDS)

    tasks = [asyncio.ensure_future(rewrite(s.text)) for s in sentences]
    quotes: list[str] = []
    try:
        for n, (task, source) in enumerate(zip(tasks, sentences, strict=True)):
            line = await task
            if usage.cancelled:
                break
            quotes.append(source.text)
            if n < len(labels):
                line = f"{labels[n]} {line}"
            await answer.say(ctx, _line(line, n, shape=shape, kind=kind, markdown=markdown))
    finally:
        for task in tasks:
            task.cancel()
    answer.quotes = quotes
    answer.finish = usage.finish()


def _line(text: str, n: int, *, shape: str, kind: str, markdown: bool) -> str:
    if shape == "headline":
        return text.rstrip(".")
    if kind == "key-points":
        return ("\n" if n else "") + ("- " if markdown else "• ") + text
    return (" " if n else "") + text

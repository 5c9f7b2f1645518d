"""Task: rewrite or translate a passage (the selection), or run the user's own action on it,
with the passage around it when it fits. prompts (the source language detected) → respond;
nothing to read, plan or cite."""

from __future__ import annotations

from tiangong.engine.base import REWRITE, GenerationParams, Job
from tiangong.errors import BadRequestError, TooLargeError
from tiangong.extract.lang import detect_language
from tiangong.pipeline.generate import ready_engine
from tiangong.pipeline.plan import Plan
from tiangong.pipeline.prompts import rewrite_max_tokens, rewrite_messages
from tiangong.pipeline.record import Exchange, new_conversation
from tiangong.pipeline.request import RequestContext, doc_from_text
from tiangong.pipeline.respond import announce, respond
from tiangong.protocol.messages import Rewrite

# Words of the passage that name its conversation.
TITLE_WORDS = 8
TITLE_PREFIX = {"rewrite": "Rewrite: ", "translate": "Translate: ", "action": "Action: "}


async def rewrite(req: Rewrite, ctx: RequestContext) -> None:
    engine = await ready_engine(ctx, REWRITE)
    text_tokens = engine.count_tokens(req.text)
    max_new = rewrite_max_tokens(text_tokens, req.options)
    source_lang = detect_language(req.text)
    translating = req.options.task == "translate"
    if translating and not req.options.output_language:
        raise BadRequestError("options.output_language: name the language to translate into")
    if req.options.task == "action" and not (req.options.instruction or "").strip():
        raise BadRequestError("options.instruction: an action needs its instruction")
    messages = rewrite_messages(req.text, req.context, req.options, source_lang)
    prompt_tokens = engine.count_prompt_tokens(messages)
    if prompt_tokens + max_new > engine.context_tokens and req.context:
        # The surrounding passage is a nicety; the text itself is not.
        messages = rewrite_messages(req.text, None, req.options, source_lang)
        prompt_tokens = engine.count_prompt_tokens(messages)
    if prompt_tokens + max_new > engine.context_tokens:
        raise TooLargeError(
            f"the text is {text_tokens} tokens; this model rewrites at most about "
            f"{engine.context_tokens // 3} at once"
        )
    title = TITLE_PREFIX[req.options.task] + " ".join(req.text.split()[:TITLE_WORDS])
    doc = doc_from_text("", title, req.text, source_lang)
    exchange = Exchange(
        conversation=await new_conversation(ctx.resources.store, "rewrite", doc),
        kind="rewrite",
        user_text=req.text,
        cite_from=None,
        supersedes=req.regenerates,
    )
    plan = Plan("whole", req.text, text_tokens, text_tokens)
    await announce(ctx, exchange, doc=doc, plan=plan, prompt_tokens=prompt_tokens)
    job = Job("rewrite", messages, GenerationParams(max_new), source_text=req.text)
    await respond(ctx, job, exchange)

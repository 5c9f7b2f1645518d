"""Task: summarize one page (or its selection).

read → a new conversation → `summaries.write_summary` (the sentences that carry the page,
rewritten one by one, for a small model; else the whole page, or notes on every part of a
page too long for the context, condensed while they do not fit).
"""

from __future__ import annotations

from tiangong.engine.base import SUMMARIZE
from tiangong.pipeline.generate import ready_engine
from tiangong.pipeline.read import read_page
from tiangong.pipeline.record import Exchange, new_conversation
from tiangong.pipeline.request import RequestContext
from tiangong.pipeline.summaries import Summary, write_summary
from tiangong.protocol.messages import Summarize


async def summarize(req: Summarize, ctx: RequestContext) -> None:
    engine = await ready_engine(ctx, SUMMARIZE)
    doc = await read_page(ctx.resources.extractor, req.page, use_selection=True)
    ctx.check_cancel()
    what = "selection" if doc.from_selection else "page"
    options = req.options
    exchange = Exchange(
        conversation=await new_conversation(ctx.resources.store, "summarize", doc),
        kind="summarize",
        user_text=f"Summarize the {what} ({options.type}, {options.length})",
        cite_from=None,
        sources=(doc,),
        supersedes=req.regenerates,
    )
    await write_summary(ctx, Summary(doc, options, engine, exchange))

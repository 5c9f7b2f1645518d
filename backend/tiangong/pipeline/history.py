"""Task: what the history holds. The conversations, newest first; one conversation's turns;
or the stored turns of one request, those a regenerated answer replaced included."""

from __future__ import annotations

from tiangong.errors import BadRequestError
from tiangong.pipeline.request import RequestContext
from tiangong.protocol.frames import history_frame
from tiangong.protocol.messages import History


async def history(req: History, ctx: RequestContext) -> None:
    store = ctx.resources.store
    if req.request_id is not None:
        conv_id = await store.run(
            store.conversation_of_request, req.request_id, req.conversation_id
        )
        if conv_id is None:
            raise BadRequestError(f"no stored answer for request {req.request_id!r}")
        conv = await store.run(store.get_conversation, conv_id)
        turns = await store.run(store.turns, conv_id, superseded=True)
        assert conv is not None
        mine = [t for t in turns if t.request_id == req.request_id]
        await ctx.emit(history_frame(req.id, conversation=conv, turns=mine))
        return
    if req.conversation_id is None:
        convs = await store.run(store.list_conversations, req.limit)
        await ctx.emit(history_frame(req.id, conversations=convs))
        return
    conv = await store.run(store.get_conversation, req.conversation_id)
    if conv is None:
        raise BadRequestError(f"conversation {req.conversation_id!r} is not known here")
    turns = await store.run(store.turns, conv.id)
    await ctx.emit(history_frame(req.id, conversation=conv, turns=turns[-req.limit * 2 :]))

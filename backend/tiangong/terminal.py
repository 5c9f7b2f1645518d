"""`tiangong summarize` and `tiangong ask`: the service's own code path, printed to a terminal.

The runtime is the server's (`tiangong.runtime`); this module only turns a file into a
request and prints the frames that come back. The answer streams to stdout; progress, the
plan and citations go to stderr so the answer can be piped on its own.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from tiangong.engine.base import CancelToken
from tiangong.errors import TiangongError
from tiangong.protocol.messages import Ask, Page, Summarize, SummarizeOptions
from tiangong.runtime import build_runtime
from tiangong.settings import Settings


async def run_in_terminal(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        print(f"tiangong: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    url = args.file.resolve().as_uri()
    if raw[:1024].lstrip().startswith(b"%PDF-"):
        page = Page(url=url, title=args.file.stem, pdf=base64.b64encode(raw).decode("ascii"))
    else:
        page = Page(url=url, title=args.file.stem, html=raw.decode("utf-8", "replace"))
    if args.command == "summarize":
        options = SummarizeOptions(
            type=args.type, length=args.length, output_language=args.output_language
        )
        message: Summarize | Ask = Summarize("cli", page, options)
    else:
        message = Ask("cli", args.question, page, None)

    runtime = build_runtime(settings)
    # One request: an extraction worker starts for it anyway.
    await runtime.start(warm_up_extraction=False)

    last = [""]  # the last progress line: printed once however often it repeats

    async def emit(frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "delta":
            sys.stdout.write(frame["text"])
            sys.stdout.flush()
        elif kind == "progress":
            line = f"[{frame['stage']} {frame['done']}/{frame['total']}]"
            if line != last[0]:
                print(line, file=sys.stderr)
                last[0] = line
        elif kind == "start":
            status, plan = runtime.host.status(), frame["page"]["plan"]
            print(
                f"[{status.name} · {status.model} · {frame['page']['title']!r}: "
                f"{frame['page']['tokens']} tokens, {plan['strategy']}, "
                f"{plan['coverage']:.0%} read]",
                file=sys.stderr,
            )
        elif kind == "citation":
            where = f", p. {frame['page']}" if "page" in frame else ""
            print(f"\n[{frame['n']}{where}] {frame['quote']}", file=sys.stderr)
        elif kind == "done":
            print(file=sys.stdout)
            print(
                f"[{frame['finish_reason']}, {frame['usage']['completion_tokens']} tokens, "
                f"{frame['timing']['total_ms'] / 1000:.1f} s]",
                file=sys.stderr,
            )

    try:
        await runtime.service.handle(message, emit, CancelToken())
    except TiangongError as exc:
        print(f"tiangong: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await runtime.close()
    return 0

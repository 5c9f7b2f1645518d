"""The `tiangong` command: serve, token, summarize, ask, history export; native-host, install,
uninstall and extension (zero set-up, in `tiangong.native`).

Every flag of `serve` can also be set as a TIANGONG_* environment variable (flag wins).
"""

from __future__ import annotations

import os

from tiangong.openmp import waiting_environment

# Before torch is imported anywhere (tiangong.openmp says why).
os.environ.update(waiting_environment())
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from tiangong import __version__
from tiangong.logs import LOG_FORMATS, configure_logging
from tiangong.native import commands as native_commands
from tiangong.settings import DEVICES, DTYPES, ENGINES, READINGS, Settings, default_data_dir

log = logging.getLogger("tiangong")


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"TIANGONG_{name}", default)


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=[e for e in ENGINES if e != "fake"],
        default=_env("ENGINE", "auto"),
        help="auto: a local model, falling back to extractive if none loads (default: auto)",
    )
    p.add_argument(
        "--model",
        default=_env("MODEL"),
        help="hub id, local folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)",
    )
    p.add_argument("--device", choices=DEVICES, default=_env("DEVICE", "auto"))
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default=_env("DTYPE", "auto"),
        help="weights: auto (bf16 where the hardware has it, else fp32) or int8 (CPU, faster)",
    )
    p.add_argument(
        "--reading",
        choices=READINGS,
        default=_env("READING", "auto"),
        help="how the model reads a page: the whole page, or only the passages that answer "
        "(evidence); auto: evidence for models under 1B parameters (default: auto)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR", str(default_data_dir()))),
        help="token, history and converted models (default: %(default)s)",
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=_env("LOG_FORMAT", "text"),
        help="json: one JSON object a line, with request ids (default: text)",
    )
    openai = p.add_argument_group("--engine openai (any OpenAI-compatible server)")
    openai.add_argument(
        "--openai-base-url",
        default=_env("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
        help="the server's API root (default: %(default)s)",
    )
    openai.add_argument(
        "--openai-api-key",
        default=_env("OPENAI_API_KEY"),
        help="sent as a bearer token; prefer TIANGONG_OPENAI_API_KEY (flags show in ps)",
    )
    openai.add_argument(
        "--openai-model", default=_env("OPENAI_MODEL"), help="default: the first model listed"
    )
    openai.add_argument(
        "--openai-context",
        type=int,
        default=_env("OPENAI_CONTEXT"),
        help="context tokens (default: the server's max_model_len, else 8192)",
    )
    openai.add_argument(
        "--openai-timeout",
        type=float,
        default=float(_env("OPENAI_TIMEOUT", "120")),
        help="seconds without a byte from the server before a request fails (default: 120)",
    )
    openai.add_argument(
        "--openai-concurrency",
        type=int,
        default=int(_env("OPENAI_CONCURRENCY", "16")),
        help="requests streamed to the server at once (default: 16)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiangong", description="Local AI sidebar service: it reads the page you are on."
    )
    parser.add_argument("--version", action="version", version=f"tiangong {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the service the browser extension talks to")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("PORT", "8765")))
    serve.add_argument("--token", default=_env("TOKEN"), help="pairing token (default: stored)")
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[o for o in (_env("ALLOW_ORIGIN") or "").split(",") if o],
        help="an extra allowed Origin, exactly (repeatable), e.g. moz-extension://<uuid>",
    )
    serve.add_argument(
        "--hide-token",
        action="store_true",
        help="do not print the pairing token (output kept in a log: the native host, systemd)",
    )
    _add_engine_flags(serve)

    token = sub.add_parser("token", help="print the pairing token")
    token.add_argument(
        "--data-dir", type=Path, default=Path(_env("DATA_DIR", str(default_data_dir())))
    )

    summarize = sub.add_parser("summarize", help="summarize an HTML or PDF file in the terminal")
    summarize.add_argument("file", type=Path)
    summarize.add_argument(
        "--type", choices=["key-points", "tldr", "teaser", "headline"], default="key-points"
    )
    summarize.add_argument("--length", choices=["short", "medium", "long"], default="medium")
    summarize.add_argument("--output-language")
    _add_engine_flags(summarize)

    ask = sub.add_parser("ask", help="ask a question about an HTML or PDF file in the terminal")
    ask.add_argument("file", type=Path)
    ask.add_argument("question")
    _add_engine_flags(ask)
    history = sub.add_parser("history", help="the conversations the service stored")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    export = history_sub.add_parser(
        "export", help="write stored conversations as Markdown or JSON (docs/extension.md)"
    )
    export.add_argument("--format", choices=["markdown", "json"], default="markdown")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    export.add_argument("--url", help="only conversations whose page URL contains this text")
    export.add_argument("--conversation", help="only the conversation with this id")
    export.add_argument(
        "--data-dir", type=Path, default=Path(_env("DATA_DIR", str(default_data_dir())))
    )
    native_commands.add_subcommands(sub, _add_engine_flags)
    return parser


def export_history(args: argparse.Namespace) -> int:
    """`tiangong history export`: read-only use of the store; the service may be running."""
    import json
    import sqlite3

    from tiangong.store.export import EXPORT_VERSION, history_documents, history_markdown
    from tiangong.store.history import HistoryStore

    database = Settings(data_dir=args.data_dir).database
    if not database.is_file():
        print(f"tiangong: no history at {database} (nothing was asked yet)", file=sys.stderr)
        return 1
    try:
        store = HistoryStore(database)
        try:
            docs = history_documents(store, url=args.url, conversation_id=args.conversation)
        finally:
            store.close()
    except sqlite3.DatabaseError as exc:
        print(f"tiangong: cannot read the history at {database}: {exc}", file=sys.stderr)
        return 1
    if args.conversation and not docs:
        print(f"tiangong: no conversation {args.conversation!r} in the history", file=sys.stderr)
        return 1
    if not docs:
        print("tiangong: no stored conversation matches", file=sys.stderr)
    if args.format == "json":
        whole = {"format": "tiangong-history", "version": EXPORT_VERSION, "conversations": docs}
        text = json.dumps(whole, ensure_ascii=False, indent=2) + "\n"
    else:
        text = history_markdown(docs)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"tiangong: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"Exported {len(docs)} conversation(s) to {args.out}", file=sys.stderr)
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings(
        engine=args.engine,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        reading=args.reading,
        data_dir=args.data_dir,
    )
    settings.log_level = args.log_level
    settings.log_format = args.log_format
    settings.openai_base_url = args.openai_base_url
    settings.openai_api_key = args.openai_api_key
    settings.openai_model = args.openai_model
    settings.openai_context = int(args.openai_context) if args.openai_context else None
    settings.openai_timeout = args.openai_timeout
    settings.openai_concurrency = args.openai_concurrency
    if args.command == "serve":
        settings.host = args.host
        settings.port = args.port
        settings.token = args.token
        settings.allow_origins = tuple(args.allow_origin)
    if _env("ENGINE") == "fake":  # test-only engine, never offered in --help
        settings.engine = "fake"
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in native_commands.COMMANDS:
        return native_commands.run(args)
    if args.command == "history":
        return export_history(args)
    if args.command == "token":
        print(Settings(data_dir=args.data_dir).pairing_token())
        return 0
    settings = settings_from(args)
    secrets = [settings.openai_api_key or ""]
    if args.command == "serve":
        secrets.append(settings.pairing_token())
    configure_logging(settings.log_level, settings.log_format, secrets=secrets)
    if args.command == "serve":
        if not _is_loopback(settings.host):
            print(
                f"tiangong: refusing to listen on {settings.host}: the service binds loopback "
                "only (127.0.0.1, ::1, localhost). See docs/deployment.md for a shared server.",
                file=sys.stderr,
            )
            return 2
        try:
            asyncio.run(serve(settings, hide_token=args.hide_token))
        except OSError as exc:
            print(
                f"tiangong: cannot listen on {settings.host}:{settings.port}: {exc}",
                file=sys.stderr,
            )
            return 1
        return 0
    from tiangong.terminal import run_in_terminal

    return asyncio.run(run_in_terminal(args, settings))


async def serve(settings: Settings, *, hide_token: bool = False) -> None:
    from tiangong.server.app import RUNTIME_KEY, create_app, start_site
    from tiangong.server.auth import TOKEN_KEY
    from tiangong.serving.host import EngineStatus

    if settings.token and "--token" in " ".join(sys.argv):
        log.warning(
            "--token is visible to other local users in the process list; prefer the stored "
            "token or TIANGONG_TOKEN"
        )
    app = create_app(settings)
    runner = await start_site(app)
    host = app[RUNTIME_KEY].host
    status = host.status()
    print(
        f"Tiangong {__version__} listening on ws://{settings.host}:{settings.port}/ws", flush=True
    )
    state = "loading…" if status.state == "loading" else "ready"
    print(f"Engine: {status.name}, model {status.model} ({state})", flush=True)
    if hide_token:
        print(f"Pairing token: in {settings.token_file} (`tiangong token` prints it)", flush=True)
    else:
        print(f"Pairing token: {app[TOKEN_KEY]}", flush=True)
        print(
            "Paste the token into the extension's options; `tiangong token` prints it again.",
            flush=True,
        )

    def announce(status: EngineStatus) -> None:
        if status.state == "ready":
            note = f" — {status.fallback_reason}" if status.fallback_reason else ""
            print(f"Engine ready: {status.name}, model {status.model}{note}", flush=True)

    host.subscribe(announce)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())

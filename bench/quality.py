"""Answer quality on the page-QA development set, through the real service as the sidebar uses it.

    .venv/bin/python bench/quality.py                      # embedded, extractive (+ llama.cpp)
    .venv/bin/python bench/quality.py --engines embedded -v --out /tmp/quality
    .venv/bin/python bench/quality.py --engines model --model /path/to/model-folder
    .venv/bin/python bench/quality.py --items q10,q16,s01 -v

Reads `../shared/qa-dev/qa.json` (the items), `../shared/qa-dev/score.py` (the scorer,
imported from there), `../shared/extraction-bench/pages/<page_id>.html.gz` (the pages) and
`../shared/extraction-bench/ground-truth.json` (each page's true article text); `--shared DIR`
points elsewhere. Nothing in the test suite needs these files.

Each service engine runs in its own `tiangong serve` process (free port, temporary data dir,
its own token). One WebSocket client says `hello`, then sends each item the way the sidebar
does: `ask` with the page (url, title, html, lang as the page declares it) and the question;
`summarize` with the page and the "Summarize page" button's default options (key-points,
medium, markdown; `--length` changes the length). The answer is the concatenated `delta`
texts. Engines (`--engines`, comma-separated):

- `embedded`: `--engine auto` without `--model` (SmolLM2-135M-Instruct, shipped in a wheel);
- `extractive`: `--engine extractive` (quotes page sentences, no model);
- `model`: `--engine transformers --model X` (with `--model`);
- `llamacpp`: the peer, when `llama_cpp` (llama-cpp-python) is importable: llama.cpp on the
  embedded model's own GGUF file, 2 threads, greedy, no repetition penalty, chat template from
  the GGUF, one user message with a plain prompt: the true article text, a blank line, then
  "Summarize the key points of the article above." (summaries) or the question (questions).
  It reads the true article, not the page: it shows what a plain prompt gives on clean text.

Figures per engine, side by side:

- question accuracy (the scorer's `score_answer`), overall and on answers in the second half
  of their article (`answer_position > 0.5`);
- summary fact coverage (the scorer's `score_summary`);
- grounding: per summary, the share of its content words that occur in the page's true
  article text, averaged over summaries. Content words: lowercased word tokens (runs of
  letters and digits) of at least 3 letters that are not in the small stopword list below,
  plus every token with a digit in it (numbers are kept whatever their length);
- distinct 3-grams: per summary, distinct word 3-grams / all word 3-grams over its lowercased
  word tokens, averaged over summaries (summaries under 3 words are left out);
- median seconds per answer: from sending the request to its `done` (the user's wait,
  extraction included), over all items, and for questions and summaries apart.

`-v` prints one line per item (id, OK/BAD or coverage, seconds, the answer shortened);
`--out DIR` writes `DIR/<engine>/answers.json` ({item id: answer}), the format `score.py`
takes. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import lxml.html
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "backend")]

# The tests' settings (tests/conftest.py) make workers wait passively; the service here
# waits as it does for users unless this command was given a policy.
WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
from tests.conftest import free_port  # noqa: E402
from tests.support.service_process import service_env, start_serve  # noqa: E402

from tiangong.engine.embedded import embedded_gguf_path  # noqa: E402

DEFAULT_SHARED = REPO.parent / "shared"
TOKEN = "quality-bench-token"
SERVICE_ENGINES = ("embedded", "extractive", "model")
PEER = "llamacpp"
# The sidebar's "Summarize page" defaults (extension/lib/settings.js, SUMMARY_DEFAULTS).
SUMMARY_OPTIONS = {"type": "key-points", "length": "medium", "format": "markdown"}
PEER_SUMMARY_PROMPT = "Summarize the key points of the article above."
# New-token limits for the peer: those the service gives a medium key-points summary and a
# question, so both stop at the same length.
PEER_MAX_TOKENS = {"summary": 180, "question": 320}
PEER_CONTEXT = 8192
ANSWER_TIMEOUT_S = 900.0
# document.documentElement.lang as the sidebar accepts it (extension/content/page-functions.js).
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
WORD_RE = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    """the and for are but not you all any can had her was one our out his has how its may new
    now see who did get got him let say she too use than that this with from they them then
    there their these those what when where which while will would could should been being
    have having into onto over under about after before also just more most some such only
    other very each were your yours here does done doing because between through during
    against again further once both few own same off above below until upon per via like""".split()
)


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # "question" | "summary"
    page_id: str
    url: str
    question: str = ""
    accept: tuple[str, ...] = ()
    facts: tuple[tuple[str, ...], ...] = ()
    position: float = 0.0


@dataclass
class Answer:
    text: str
    seconds: float
    error: str = ""
    strategy: str = ""
    citations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    html: str
    title: str
    lang: str
    article: str  # the true article text (ground truth)


@dataclass(frozen=True)
class Shared:
    qa: Path
    scorer: ModuleType
    pages_dir: Path
    truth: dict[str, Any]


def say(line: str = "") -> None:
    print(line, flush=True)


def load_shared(root: Path) -> Shared:
    qa = root / "qa-dev" / "qa.json"
    score = root / "qa-dev" / "score.py"
    bench = root / "extraction-bench"
    needed = (qa, score, bench / "pages", bench / "ground-truth.json")
    missing = [p for p in needed if not p.exists()]
    if missing:
        raise SystemExit(
            f"bench/quality.py needs the shared QA set: {', '.join(map(str, missing))} not found "
            f"(pass --shared DIR, the folder holding qa-dev/ and extraction-bench/)"
        )
    spec = importlib.util.spec_from_file_location("qa_dev_score", score)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import the scorer {score}")
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    truth = json.loads((bench / "ground-truth.json").read_text(encoding="utf-8"))
    return Shared(qa, scorer, bench / "pages", truth)


def load_items(qa_path: Path, only: set[str]) -> list[Item]:
    qa = json.loads(qa_path.read_text(encoding="utf-8"))
    items = [
        Item(
            q["id"],
            "question",
            q["page_id"],
            q["url"],
            question=q["question"],
            accept=tuple(q["accept"]),
            position=float(q["answer_position"]),
        )
        for q in qa["questions"]
    ] + [
        Item(s["id"], "summary", s["page_id"], s["url"], facts=tuple(map(tuple, s["facts"])))
        for s in qa["summaries"]
    ]
    if only:
        unknown = only - {i.id for i in items}
        if unknown:
            raise SystemExit(f"--items: not in {qa_path}: {', '.join(sorted(unknown))}")
        items = [i for i in items if i.id in only]
    return items


def load_page(shared: Shared, page_id: str) -> Page:
    raw = gzip.decompress((shared.pages_dir / f"{page_id}.html.gz").read_bytes())
    html = raw.decode("utf-8", errors="replace")
    root = lxml.html.document_fromstring(raw)
    title = " ".join((root.findtext(".//title") or "").split())[:2000]
    lang = (root.get("lang") or "").strip().replace("_", "-")
    if len(lang) > 35 or not LANG_RE.match(lang):
        lang = ""
    return Page(html, title, lang, shared.truth[page_id]["articleBody"])


def words(text: str) -> list[str]:
    return [w.casefold() for w in WORD_RE.findall(text)]


def content_words(text: str) -> list[str]:
    return [
        w
        for w in words(text)
        if any(c.isdigit() for c in w) or (len(w) >= 3 and w not in STOPWORDS)
    ]


def grounding(summary: str, article: str) -> float | None:
    said = content_words(summary)
    if not said:
        return None
    known = set(words(article))
    return sum(w in known for w in said) / len(said)


def distinct_trigrams(summary: str) -> float | None:
    tokens = words(summary)
    grams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
    return len(set(grams)) / len(grams) if grams else None


def shorten(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def request_frame(item: Item, page: Page, rid: str, length: str) -> dict[str, Any]:
    wire_page: dict[str, Any] = {"url": item.url, "title": page.title, "html": page.html}
    if page.lang:
        wire_page["lang"] = page.lang
    if item.kind == "question":
        return {"type": "ask", "id": rid, "question": item.question, "page": wire_page}
    options = {**SUMMARY_OPTIONS, "length": length}
    return {"type": "summarize", "id": rid, "page": wire_page, "options": options}


def start_service(args: tuple[str, ...], data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = service_env(TIANGONG_TOKEN=TOKEN)
    if WAIT_POLICY is None:
        env.pop("OMP_WAIT_POLICY", None)
    proc = start_serve(
        port, *args, "--data-dir", str(data_dir), env=env, until_ready=True, timeout=900
    )
    return proc, port


async def ask_service(ws: Any, frame: dict[str, Any]) -> Answer:
    rid = frame["id"]
    sent = time.monotonic()
    await ws.send(json.dumps(frame))
    parts: list[str] = []
    answer = Answer("", 0.0)
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
        if reply.get("id") != rid:
            continue
        kind = reply["type"]
        if kind == "start":
            plan = reply["page"]["plan"]
            answer.strategy = f"{plan['strategy']} {plan['coverage']:.2f}"
        elif kind == "delta":
            parts.append(reply["text"])
        elif kind == "citation":
            answer.citations.append(reply["quote"])
        elif kind == "error":
            answer.error = f"{reply['code']}: {reply['message']}"
            break
        elif kind == "done":
            break
    answer.text = "".join(parts)
    answer.seconds = time.monotonic() - sent
    return answer


async def run_service(
    engine: str,
    serve_args: tuple[str, ...],
    items: list[Item],
    pages: Callable[[str], Page],
    length: str,
    report: Callable[[str, Item, Answer], None],
) -> tuple[str, dict[str, Answer]]:
    with tempfile.TemporaryDirectory(prefix="tiangong-quality-") as tmp:
        proc, port = await asyncio.to_thread(start_service, serve_args, Path(tmp))
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
                await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": TOKEN}))
                welcome = json.loads(await ws.recv())
                if welcome.get("type") != "welcome":
                    raise SystemExit(f"{engine}: the service refused hello: {welcome}")
                info = welcome["engine"]
                if info.get("fallback_reason") and engine != "extractive":
                    raise SystemExit(f"{engine}: no model loaded ({info['fallback_reason']})")
                described = f"{info['name']}: {info['model']}"
                answers: dict[str, Answer] = {}
                for n, item in enumerate(items):
                    frame = request_frame(item, pages(item.page_id), f"{item.id}-{n}", length)
                    answers[item.id] = await ask_service(ws, frame)
                    report(engine, item, answers[item.id])
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 60)
    return described, answers


def run_peer(
    items: list[Item],
    pages: Callable[[str], Page],
    report: Callable[[str, Item, Answer], None],
) -> tuple[str, dict[str, Answer]]:
    from llama_cpp import Llama

    gguf = embedded_gguf_path()
    llm = Llama(model_path=str(gguf), n_ctx=PEER_CONTEXT, n_threads=2, verbose=False, seed=0)
    answers: dict[str, Answer] = {}
    for item in items:
        kind = item.kind
        ask = item.question if kind == "question" else PEER_SUMMARY_PROMPT
        max_tokens = PEER_MAX_TOKENS[kind]
        article = fit_article(llm, pages(item.page_id).article, ask, max_tokens)
        started = time.monotonic()
        out: Any = llm.create_chat_completion(
            messages=[{"role": "user", "content": f"{article}\n\n{ask}"}],
            temperature=0.0,
            top_k=1,
            repeat_penalty=1.0,
            max_tokens=max_tokens,
        )
        text = out["choices"][0]["message"]["content"] or ""
        answers[item.id] = Answer(text, time.monotonic() - started)
        report(PEER, item, answers[item.id])
    return f"llama.cpp {gguf.name}, plain prompt on the true article", answers


def fit_article(llm: Any, article: str, ask: str, max_tokens: int) -> str:
    """The article cut (by tokens, from the end) so that it, the ask and the answer fit."""
    room = PEER_CONTEXT - max_tokens - len(llm.tokenize(ask.encode())) - 64
    tokens = llm.tokenize(article.encode(), add_bos=False)
    if len(tokens) <= room:
        return article
    return str(llm.detokenize(tokens[:room]).decode("utf-8", errors="ignore"))


@dataclass
class Figures:
    described: str
    accuracy: float | None = None
    late: float | None = None
    coverage: float | None = None
    grounding: float | None = None
    distinct: float | None = None
    seconds: float | None = None
    seconds_q: float | None = None
    seconds_s: float | None = None
    errors: int = 0


def mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(
    described: str,
    answers: dict[str, Answer],
    items: list[Item],
    pages: Callable[[str], Page],
    scorer: ModuleType,
) -> Figures:
    questions = [i for i in items if i.kind == "question"]
    summaries = [i for i in items if i.kind == "summary"]
    right = {i.id: bool(scorer.score_answer(answers[i.id].text, list(i.accept))) for i in questions}
    late = [i for i in questions if i.position > 0.5]
    texts = {i.id: answers[i.id].text for i in summaries}
    covered = [scorer.score_summary(texts[i.id], [list(f) for f in i.facts]) for i in summaries]
    return Figures(
        described,
        accuracy=mean([float(right[i.id]) for i in questions]),
        late=mean([float(right[i.id]) for i in late]),
        coverage=mean(covered),
        grounding=mean([grounding(texts[i.id], pages(i.page_id).article) for i in summaries]),
        distinct=mean([distinct_trigrams(texts[i.id]) for i in summaries]),
        seconds=median([a.seconds for a in answers.values()]),
        seconds_q=median([answers[i.id].seconds for i in questions]),
        seconds_s=median([answers[i.id].seconds for i in summaries]),
        errors=sum(bool(a.error) for a in answers.values()),
    )


def print_table(results: dict[str, Figures], items: list[Item]) -> None:
    n_q = sum(i.kind == "question" for i in items)
    n_late = sum(i.kind == "question" and i.position > 0.5 for i in items)
    n_s = sum(i.kind == "summary" for i in items)
    rows: list[tuple[str, Callable[[Figures], float | None], str]] = [
        (f"question accuracy (n={n_q})", lambda f: f.accuracy, "{:.2f}"),
        (f"second-half accuracy (n={n_late})", lambda f: f.late, "{:.2f}"),
        (f"summary fact coverage (n={n_s})", lambda f: f.coverage, "{:.2f}"),
        ("summary grounding", lambda f: f.grounding, "{:.2f}"),
        ("summary distinct 3-grams", lambda f: f.distinct, "{:.2f}"),
        ("median s per answer", lambda f: f.seconds, "{:.1f}"),
        ("  median s, questions", lambda f: f.seconds_q, "{:.1f}"),
        ("  median s, summaries", lambda f: f.seconds_s, "{:.1f}"),
        ("errors", lambda f: float(f.errors), "{:.0f}"),
    ]
    names = list(results)
    width = max(12, *(len(n) for n in names))
    say()
    say(f"{'':36}" + "".join(f"{n:>{width + 2}}" for n in names))
    for label, get, fmt in rows:
        cells = []
        for name in names:
            value = get(results[name])
            cells.append(f"{'—' if value is None else fmt.format(value):>{width + 2}}")
        say(f"{label:36}" + "".join(cells))
    say()
    for name, fig in results.items():
        say(f"{name}: {fig.described}")


def make_reporter(verbose: bool, scorer: ModuleType) -> Callable[[str, Item, Answer], None]:
    def report(engine: str, item: Item, answer: Answer) -> None:
        if not verbose:
            return
        if item.kind == "question":
            verdict = "OK " if scorer.score_answer(answer.text, list(item.accept)) else "BAD"
        else:
            verdict = f"{scorer.score_summary(answer.text, [list(f) for f in item.facts]):.2f}"
        shown = f"ERROR {answer.error}" if answer.error else shorten(answer.text)
        plan = f" [{answer.strategy}]" if answer.strategy else ""
        say(f"{engine:10} {item.id} {verdict} {answer.seconds:5.1f}s{plan} {shown}")

    return report


def chosen_engines(spec: str, model: str | None) -> list[str]:
    have_peer = importlib.util.find_spec("llama_cpp") is not None
    if spec:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    else:
        names = ["embedded", "extractive", *(["model"] if model else []), PEER]
    unknown = [n for n in names if n not in (*SERVICE_ENGINES, PEER)]
    if unknown:
        raise SystemExit(f"--engines: unknown {', '.join(unknown)}")
    if "model" in names and not model:
        raise SystemExit("--engines model needs --model (a model folder, .gguf file or hub id)")
    if PEER in names and not have_peer:
        if spec:
            raise SystemExit(
                "--engines llamacpp needs llama-cpp-python (pip install llama-cpp-python)"
            )
        say("note: llama_cpp is not installed; the llama.cpp peer is left out")
        names.remove(PEER)
    return names


def serve_args(engine: str, model: str | None) -> tuple[str, ...]:
    if engine == "embedded":
        return ("--engine", "auto")
    if engine == "extractive":
        return ("--engine", "extractive")
    return ("--engine", "transformers", "--model", str(model))


async def main_async(args: argparse.Namespace) -> int:
    shared = load_shared(args.shared.resolve())
    only = {s.strip() for s in args.items.split(",") if s.strip()} if args.items else set()
    items = load_items(shared.qa, only)
    engines = chosen_engines(args.engines, args.model)
    cache: dict[str, Page] = {}

    def pages(page_id: str) -> Page:
        if page_id not in cache:
            cache[page_id] = load_page(shared, page_id)
        return cache[page_id]

    report = make_reporter(args.verbose, shared.scorer)
    started = time.monotonic()
    say(f"items: {len(items)} from {shared.qa}; engines: {', '.join(engines)}")
    say(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, Figures] = {}
    for engine in engines:
        began = time.monotonic()
        if engine == PEER:
            described, answers = await asyncio.to_thread(run_peer, items, pages, report)
        else:
            described, answers = await run_service(
                engine, serve_args(engine, args.model), items, pages, args.length, report
            )
        say(f"{engine}: {len(answers)} answers in {time.monotonic() - began:.0f} s")
        results[engine] = figures(described, answers, items, pages, shared.scorer)
        if args.out:
            folder = args.out / engine
            folder.mkdir(parents=True, exist_ok=True)
            texts = {i: a.text for i, a in answers.items()}
            (folder / "answers.json").write_text(
                json.dumps(texts, ensure_ascii=False, indent=1), encoding="utf-8"
            )
    print_table(results, items)
    say(f"summary options: {json.dumps({**SUMMARY_OPTIONS, 'length': args.length})}")
    say(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    say(f"wall time: {time.monotonic() - started:.0f} s")
    if args.out:
        say(f"answers: {args.out}/<engine>/answers.json (python3 {shared.qa.parent}/score.py …)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="default: ../shared")
    parser.add_argument(
        "--engines",
        default="",
        help="comma-separated: embedded, extractive, model, llamacpp "
        "(default: embedded, extractive, model with --model, llamacpp when installed)",
    )
    parser.add_argument("--model", help="hub id, model folder or .gguf file for `model`")
    parser.add_argument("--items", default="", help="only these item ids (comma-separated)")
    parser.add_argument("--length", choices=("short", "medium", "long"), default="medium")
    parser.add_argument("--out", type=Path, help="write <DIR>/<engine>/answers.json")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per item")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

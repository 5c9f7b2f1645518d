#!/usr/bin/env python3
"""Article extraction quality and speed on the development half of the extraction benchmark.

    python bench/extraction.py [--bench DIR] [--json out.json]

The benchmark is not part of the repository: it is read from `../shared/extraction-bench`
beside the checkout unless `--bench` names another folder holding its `eval_extraction.py`,
`pages/` and `ground-truth.json`.

Runs the benchmark's own scorer (eval_extraction.py, AEB's shingle F1) on
`tiangong.extract.extract_text` in one process on one core, then prints F1, precision,
recall, 10th-percentile page F1, pages/s and peak memory, plus the worst pages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = ROOT.parent / "shared" / "extraction-bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench",
        type=Path,
        default=DEFAULT_BENCH,
        help=f"the benchmark's folder (default: {DEFAULT_BENCH})",
    )
    parser.add_argument("--json", type=Path, help="also keep the scorer's per-page JSON here")
    parser.add_argument("--worst", type=int, default=8, help="how many worst pages to list")
    args = parser.parse_args()

    scorer = args.bench / "eval_extraction.py"
    missing = [
        name
        for name in ("eval_extraction.py", "pages", "ground-truth.json")
        if not (args.bench / name).exists()
    ]
    if missing:
        print(
            f"bench/extraction.py: no extraction benchmark at {args.bench.resolve()} "
            f"(missing: {', '.join(missing)}); pass --bench DIR to name its folder",
            file=sys.stderr,
        )
        return 2
    out = args.json or Path(tempfile.mkstemp(suffix=".json")[1])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "backend"))
    command = [
        sys.executable,
        str(scorer),
        "--pages",
        str(args.bench / "pages"),
        "--ground-truth",
        str(args.bench / "ground-truth.json"),
        "--extractor",
        "tiangong.extract:extract_text",
        "--json",
        str(out),
    ]
    # One core, as the target is stated: pin the scorer (and so the extractor) to CPU 0.
    if hasattr(os, "sched_setaffinity"):
        command = ["taskset", "-c", "0", *command] if _has_taskset() else command
    result = subprocess.run(command, env=env, cwd=ROOT, check=False)
    if result.returncode != 0:
        return result.returncode

    report = json.loads(out.read_text())
    truth = json.loads((args.bench / "ground-truth.json").read_text(encoding="utf-8"))
    worst = sorted(report["per_page"].items(), key=lambda item: item[1]["f1"])[: args.worst]
    print(f"\nworst {len(worst)} pages (page F1, url):")
    for page_id, page in worst:
        print(f"  {page['f1']:.3f}  {truth[page_id].get('url', page_id)}")
    if not args.json:
        out.unlink()
    return 0


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


if __name__ == "__main__":
    raise SystemExit(main())

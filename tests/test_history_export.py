"""`tiangong history export` as a user runs it (a real process) on a real SQLite history, and
the Markdown it writes, which is the panel's Markdown for the same document."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.service_process import service_env, tiangong_command
from tiangong.settings import Settings
from tiangong.store.export import conversation_markdown
from tiangong.store.history import HistoryStore, new_turn

FIXTURE = Path(__file__).parent / "fixtures" / "export"
TRAINS = "https://news.example/night-trains"


def export(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = tiangong_command("history", "export", "--data-dir", str(data_dir), *args)
    return subprocess.run(command, env=service_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Two conversations as the service stores them: one with cited answers, one rewrite."""
    store = HistoryStore(Settings(data_dir=tmp_path).database)
    trains = store.create_conversation(
        kind="summarize", url=TRAINS, title="Night trains return", page_text="…", page_lang="en"
    )
    quote = "Night trains are coming back across Europe as travellers look for low-carbon journeys."
    store.add_exchange(
        trains.id,
        new_turn("user", "summarize", "Summarize the page (key-points, short)", request_id="s1"),
        new_turn(
            "assistant",
            "summarize",
            "- Night trains are back.",
            request_id="s1",
            finish_reason="stop",
            citations=[{"n": 1, "quote": quote, "start": 0, "end": 87}],
        ),
    )
    store.add_exchange(
        trains.id,
        new_turn("user", "ask", "Which cities?", request_id="q1"),
        new_turn(
            "assistant",
            "ask",
            "Brussels and",
            request_id="q1",
            status="incomplete",
            finish_reason="cancelled",
        ),
    )
    other = store.create_conversation(
        kind="rewrite", url="", title="", page_text="", page_lang=None
    )
    store.add_exchange(
        other.id,
        new_turn("user", "rewrite", "make this formal", request_id="w1"),
        new_turn("assistant", "rewrite", "Please make this formal.", request_id="w1"),
    )
    store.close()
    return tmp_path


def test_the_markdown_is_the_one_the_panel_writes_for_the_same_document() -> None:
    doc = json.loads((FIXTURE / "conversation.json").read_text(encoding="utf-8"))
    assert conversation_markdown(doc) == (FIXTURE / "conversation.md").read_text(encoding="utf-8")


def test_markdown_export_has_questions_answers_and_numbered_quoted_citations(
    history: Path,
) -> None:
    done = export(history)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("# Night trains return\n\n<https://news.example/night-trains>\n")
    assert "## Summarize the page (key-points, short)\n\n- Night trains are back.\n" in text
    assert (
        "- [1] “Night trains are coming back across Europe as travellers look for low-carbon "
        f"journeys.” — <{TRAINS}>"
    ) in text
    assert "## Which cities?\n\nBrussels and\n\n_Stopped._" in text
    assert "\n---\n\n# Tiangong\n" in text  # the rewrite, which has no page
    assert "Please make this formal." in text


def test_json_export_to_a_file_keeps_every_conversation_and_citation(
    history: Path, tmp_path: Path
) -> None:
    out = tmp_path / "history.json"
    done = export(history, "--format", "json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "Exported 2 conversation(s)" in done.stderr
    whole = json.loads(out.read_text(encoding="utf-8"))
    assert whole["format"] == "tiangong-history"
    trains, rewrite = whole["conversations"]
    assert trains["format"] == "tiangong-conversation"
    assert [e["question"] for e in trains["exchanges"]] == [
        "Summarize the page (key-points, short)",
        "Which cities?",
    ]
    citation = trains["exchanges"][0]["citations"][0]
    assert citation["n"] == 1 and citation["url"] == TRAINS
    assert citation["quote"].startswith("Night trains are coming back")
    assert trains["exchanges"][1]["finish_reason"] == "cancelled"
    assert rewrite["exchanges"][0]["answer"] == "Please make this formal."


def test_filters_pick_conversations_by_page_url_or_id(history: Path) -> None:
    by_url = json.loads(export(history, "--format", "json", "--url", "news.example").stdout)
    assert [c["title"] for c in by_url["conversations"]] == ["Night trains return"]
    conversation_id = by_url["conversations"][0]["conversation_id"]
    by_id = export(history, "--conversation", conversation_id)
    assert by_id.returncode == 0 and by_id.stdout.startswith("# Night trains return")
    nothing = export(history, "--url", "elsewhere.example")
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert "no stored conversation matches" in nothing.stderr


def test_a_missing_history_or_conversation_is_a_clear_error(history: Path, tmp_path: Path) -> None:
    empty = tmp_path / "never-served"
    done = export(empty)
    assert done.returncode == 1 and "no history at" in done.stderr
    assert not empty.exists(), "exporting created nothing"
    unknown = export(history, "--conversation", "0000")
    assert unknown.returncode == 1 and "no conversation '0000'" in unknown.stderr
    unwritable = export(history, "--out", str(tmp_path / "no-such-dir" / "out.md"))
    assert unwritable.returncode == 1 and "cannot write" in unwritable.stderr


def test_a_file_that_is_not_a_history_is_refused_and_left_alone(tmp_path: Path) -> None:
    database = Settings(data_dir=tmp_path).database
    database.write_bytes(b"not a database at all " * 100)
    done = export(tmp_path)
    assert done.returncode == 1 and "cannot read the history" in done.stderr
    assert database.read_bytes() == b"not a database at all " * 100

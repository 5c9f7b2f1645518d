"""Pure pieces: sentences, terms, BM25, planning and citations."""

from __future__ import annotations

from tiangong.pipeline.cite import find_citations
from tiangong.pipeline.plan import plan_page
from tiangong.text import BM25, count_words, sentences, terms

PAGE = (
    "Solar capacity doubled in three years, the agency said. "
    "Costs of panels fell by half over the same period. "
    "Dr. Smith of the U.S. agency warned about storage.\n\n"
    "Grid operators say storage must grow as quickly."
)


def count(text: str) -> int:
    return len(text.split())


def test_sentences_are_verbatim_slices_and_respect_abbreviations() -> None:
    spans = sentences(PAGE)
    assert all(PAGE[s.start : s.end] == s.text for s in spans)
    assert "Dr. Smith of the U.S. agency warned about storage." in [s.text for s in spans]
    assert len(spans) == 4


def test_chinese_is_searchable_and_counted_per_character() -> None:
    assert count_words("太阳能发电 grows") == 6
    assert "太阳" in terms("太阳能发电")
    assert BM25(["电池板成本下降", "太阳能装机容量翻番"]).rank("太阳能") == [1]


def test_a_page_that_fits_is_read_whole() -> None:
    plan = plan_page(PAGE, PAGE.split("\n\n"), count_tokens=count, budget=1000)
    assert plan.strategy == "whole" and plan.coverage == 1.0 and plan.context == PAGE


def test_a_question_on_a_long_page_retrieves_the_relevant_chunks() -> None:
    filler = [f"Paragraph {i} talks about gardening and tomatoes at length." for i in range(200)]
    blocks = [*filler[:100], "The bridge opened in 1932 after six years of work.", *filler[100:]]
    text = "\n\n".join(blocks)
    plan = plan_page(
        text, blocks, count_tokens=count, budget=300, question="When did the bridge open?"
    )
    assert plan.strategy == "retrieve"
    assert "The bridge opened in 1932" in plan.context
    assert count(plan.context) <= 320 and 0 < plan.coverage < 0.2


def test_a_summary_of_a_long_page_reads_all_of_it_in_chunks() -> None:
    blocks = [f"Block {i} " + "word " * 40 for i in range(100)]
    plan = plan_page("\n\n".join(blocks), blocks, count_tokens=count, budget=500)
    assert plan.strategy == "map-reduce" and plan.coverage == 1.0
    assert "\n\n".join(c.text for c in plan.chunks) == "\n\n".join(blocks)


def test_citations_quote_the_supporting_sentence_verbatim() -> None:
    answer = (
        "- Panel costs fell by half.\n- Capacity doubled in three years.\n- Nothing about cats."
    )
    found = find_citations(answer, PAGE)
    assert [c.quote for c in found] == [
        "Costs of panels fell by half over the same period.",
        "Solar capacity doubled in three years, the agency said.",
    ]
    assert [c.n for c in found] == [1, 2]


def test_an_answer_the_page_does_not_support_gets_no_citation() -> None:
    assert find_citations("Penguins live in Antarctica and eat krill daily.", PAGE) == []

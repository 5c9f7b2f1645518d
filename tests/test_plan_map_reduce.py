"""Planning long pages: chunks on block boundaries that each fit, all of the page covered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tiangong.pipeline.plan import MAP_CHUNK_TOKENS, group_notes, plan_page, split_long_blocks


def count(text: str) -> int:
    return len(text.split())


def test_a_page_that_fits_goes_whole_for_summaries_and_questions() -> None:
    blocks = ["One two three.", "Four five six."]
    text = "\n\n".join(blocks)
    for question in (None, "Which numbers?"):
        plan = plan_page(text, blocks, count_tokens=count, budget=6, question=question)
        assert plan.strategy == "whole" and plan.context == text and plan.coverage == 1.0


def test_a_long_page_is_summarized_map_reduce_on_block_boundaries() -> None:
    blocks = [f"Block {i} says " + "things " * (20 + i % 7) for i in range(60)]
    text = "\n\n".join(blocks)
    plan = plan_page(text, blocks, count_tokens=count, budget=200)
    assert plan.strategy == "map-reduce" and plan.coverage == 1.0 and plan.context == ""
    assert len(plan.chunks) > 5
    assert all(c.tokens <= 200 for c in plan.chunks)
    # Every chunk is whole blocks, in page order, and together they are the page.
    assert "\n\n".join(c.text for c in plan.chunks) == text
    assert all(c.text.startswith("Block ") for c in plan.chunks)


def test_map_chunks_stay_small_even_when_the_context_is_large() -> None:
    blocks = [f"Paragraph {i} " + "word " * 50 for i in range(2000)]
    plan = plan_page("\n\n".join(blocks), blocks, count_tokens=count, budget=30_000)
    assert plan.strategy == "map-reduce"
    assert max(c.tokens for c in plan.chunks) <= MAP_CHUNK_TOKENS


def test_a_question_on_the_same_long_page_retrieves_instead() -> None:
    blocks = [f"Block {i} says " + "things " * 20 for i in range(60)]
    blocks[41] = "The museum reopened on 4 May after the flood."
    text = "\n\n".join(blocks)
    plan = plan_page(
        text, blocks, count_tokens=count, budget=100, question="When did the museum reopen?"
    )
    assert plan.strategy == "retrieve" and "reopened on 4 May" in plan.context
    assert plan.coverage < 1.0


def test_one_block_longer_than_a_chunk_is_cut_between_sentences() -> None:
    block = " ".join(f"Sentence number {i} is here." for i in range(100))
    pieces = split_long_blocks([block], count, 40)
    assert len(pieces) > 10 and all(count(p) <= 40 for p in pieces)
    assert " ".join(pieces) == block
    assert all(p.endswith(".") for p in pieces)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["alpha", "beta.", "gamma", "δέλτα", "长"]), max_size=120).map(
            " ".join
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=3, max_value=50),
)
def test_split_blocks_never_exceed_the_limit_and_lose_no_words(
    blocks: list[str], limit: int
) -> None:
    pieces = split_long_blocks(blocks, count, limit)
    assert all(count(p) <= limit for p in pieces)
    assert " ".join(pieces).split() == " ".join(blocks).split()


def test_notes_are_grouped_to_fit_the_reduce_budget_in_order() -> None:
    notes = [f"note {i} " + "x " * 10 for i in range(20)]
    groups = group_notes(notes, count, 50)
    assert [n for g in groups for n in g] == notes
    assert all(sum(count(n) + 4 for n in g) <= 50 for g in groups)
    assert group_notes(notes[:2], count, 50) == [notes[:2]]

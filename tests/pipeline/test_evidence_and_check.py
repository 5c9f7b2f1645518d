"""The pure steps of evidence-first answers: ranking the page's sentences for a question, the
check an answer passes before it is shown, a request for a summary recognised in the chat,
and the sentences chosen to summarize a page."""

from __future__ import annotations

from tiangong.pipeline.check import adds_to, is_meta, support, without_preamble
from tiangong.pipeline.evidence import gather_evidence
from tiangong.pipeline.intent import asks_for_summary
from tiangong.pipeline.key_points import key_sentences

FILLER = [
    f"The council met on day {n} to discuss the budget for parks and the renovation of the "
    "old library building."
    for n in range(1, 40)
]
LATE = (
    "Councillor Maria Okafor leads the critics of the tram plan, saying it costs too much. "
    "Mayor Jan de Vries disagrees and says the line will pay for itself within 20 years."
)
PAGE = " ".join([*FILLER, LATE, "The meeting ended at nine in the evening with a vote."])


def test_a_question_about_the_end_of_a_long_page_finds_that_passage() -> None:
    evidence = gather_evidence(PAGE, "Who leads the critics of the tram plan?")
    assert evidence.matched
    assert "Maria Okafor" in evidence.best
    assert all(p in PAGE for p in evidence.passages)  # verbatim slices, so citations match
    assert sum(len(p) for p in evidence.passages) < len(PAGE) / 4  # a few passages, not all


def test_a_follow_up_with_a_pronoun_retrieves_with_the_question_before_it() -> None:
    alone = gather_evidence(PAGE, "And who disagrees with her?")
    followed = gather_evidence(
        PAGE, "And who disagrees with her?", earlier=["Who leads the critics of the tram plan?"]
    )
    assert "Jan de Vries" in followed.text
    assert "Jan de Vries" not in alone.best or "Okafor" in followed.text


def test_chinese_questions_rank_chinese_sentences() -> None:
    page = (
        "今天天气很好，我们去公园散步。图书馆明天关门维修。"
        "新的有轨电车线路将于明年开通，费用为二十亿元。"
    )
    evidence = gather_evidence(page, "有轨电车线路什么时候开通？")
    assert "有轨电车" in evidence.best


def test_with_nothing_near_the_question_the_evidence_says_it_did_not_match() -> None:
    evidence = gather_evidence(PAGE, "What colour is the submarine?")
    assert not evidence.matched and evidence.best


def test_an_invented_name_or_number_fails_the_check() -> None:
    sources = [LATE, "Who leads the critics?"]
    assert support("Councillor Maria Okafor leads the critics.", sources).supported
    invented = support("The mayor of the city of Amsterdam leads the critics.", sources)
    assert not invented.supported and "amsterdam" in invented.missing
    assert not support("The line will pay for itself within 25 years.", sources).supported
    assert not support("It costs $139.99.", ["It costs $139."]).supported


def test_an_answer_that_only_restates_the_question_adds_nothing() -> None:
    question = "Which day's print publication is McClatchy planning to end?"
    assert not adds_to("The day's print publication is McClatchy.", question)
    assert adds_to("Saturday.", question)


def test_model_preambles_are_stripped_and_meta_bullets_recognised() -> None:
    assert without_preamble("The answer to this question is: Prasad.") == "Prasad."
    assert without_preamble("A: The U.S. Virgin Islands") == "The U.S. Virgin Islands"
    assert is_meta("The page is a bulleted list with 3 key points.")
    assert is_meta("Here is a bulleted list of the 3 most important points:")
    assert not is_meta("Councillor Maria Okafor leads the critics of the tram plan.")


def test_requests_for_a_summary_are_recognised_in_several_languages() -> None:
    for message in (
        "What is this page about?",
        "Summarize this",
        "TL;DR",
        "Can you give me a quick summary?",
        "这篇文章讲了什么？",
        "О чём эта статья?",
        "Ringkas artikel ini",
    ):
        assert asks_for_summary(message), message
    for question in (
        "Summarize what Okafor said about the tram",
        "Who leads the critics?",
        "What is the tram line about to cost?",
    ):
        assert not asks_for_summary(question), question


def test_the_sentences_chosen_for_a_summary_cover_the_whole_page_without_repeats() -> None:
    parts = [
        "Solar panels were installed on every school roof in the district this spring.",
        *[
            f"The installation crew worked on school number {n} during the holidays."
            for n in range(12)
        ],
        "Electricity bills of the schools fell by a third in the first three months.",
        *[
            f"Teachers at school {n} used the panels in science lessons about energy."
            for n in range(12)
        ],
        "The district now plans to add batteries so the schools can store power overnight.",
    ]
    chosen = [s.text for s in key_sentences(" ".join(parts), 4)]
    assert chosen[0] == parts[0]  # the lead
    assert len(chosen) == 4 and len(set(chosen)) == 4
    page_order = [parts.index(c) for c in chosen]
    assert page_order == sorted(page_order)
    assert page_order[-1] > len(parts) // 2  # reaches the second half of the page

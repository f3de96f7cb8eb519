"""Answers with the real bundled models: the fact asked for, cited; abstention; the answer format.

Assertions are what a user sees (the fact in the answer, a cited passage that holds it),
never which of two near-tied passages ranks first: embedders and CPUs differ by machine.
"""

from __future__ import annotations

import json

import pytest

from assistant import Answer, Assistant, Settings
from assistant.pipeline.compose import ABSTAIN_TEXT, check_claims, WEAK_TEXT
from assistant.types import ANSWER_VERSION
from assistant.pipeline.prompt import build_messages
from index.readers import read
from tests.support import ROOT
from tests.support.corpus import build_corpus

pytestmark = pytest.mark.slow

ANSWERABLE = [
    # (question, source that must be cited, a fact the answer must state)
    ("Which platform did the Ministry of State Security join?", "seed.txt", "WeChat"),
    ("When did the ministry join WeChat?", "seed.txt", "Monday"),
    ("When do the security law reforms take effect?", "seed.txt", "July"),
    ("On which day of the week did the ministry join WeChat?", "seed.txt", "Monday"),
    ("When was Hollowmere Lighthouse first lit?", "lighthouse.txt", "1871"),
    ("What festival takes place in Bunol?", "spain.pdf", "Tomatina"),
    ("What is the capital of Belgium?", "belgium.md", "Brussels"),
    ("Which river forms part of the border between Germany and France?", "germany.html", "Rhine"),
    ("What currency does Switzerland use?", "switzerland.docx", "franc"),
]
UNANSWERABLE = [
    "How do I bake sourdough bread?",
    "Who won the 2018 football World Cup?",
    "What is the population of Spain?",
    "When did the ministry join Twitter?",
    "How many fishermen were rescued from the Titanic?",
]


@pytest.fixture(scope="module")
def bot(tmp_path_factory, embedder, bundled_llm):
    root = tmp_path_factory.mktemp("answers")
    corpus = build_corpus(root / "corpus")
    assistant = Assistant(Settings.from_env(index_dir=root / "index"), embedder=embedder,
                          llm=bundled_llm)
    report = assistant.ingest([corpus])
    assert not report.failed
    assistant.corpus = corpus
    return assistant


@pytest.fixture(scope="module")
def seed_bot(tmp_path_factory, embedder, bundled_llm):
    assistant = Assistant(Settings.from_env(index_dir=tmp_path_factory.mktemp("seeds") / "index"),
                          embedder=embedder, llm=bundled_llm)
    assert not assistant.ingest([ROOT / "seeds"]).failed
    return assistant


@pytest.mark.parametrize("mode", ["auto", "extractive"])
@pytest.mark.parametrize("question, source, fact", ANSWERABLE)
def test_answerable_questions_state_the_fact_and_cite_it(bot, mode, question, source, fact):
    answer = bot.ask(question, mode=mode)
    assert not answer.abstained, answer.answer
    assert fact.lower() in answer.answer.lower()
    assert answer.cited, "an answer must cite a passage"
    assert any(c.source == source and fact.lower() in c.text.lower() for c in answer.cited)
    for c in answer.cited:
        assert c.highlights, "cited passages show what supports the answer"


@pytest.mark.parametrize("question, source, fact", [q for q in ANSWERABLE if q[2] in ("Monday", "1871", "Rhine")])
def test_the_answer_leads_with_what_was_asked_and_marks_it(bot, question, source, fact):
    answer = bot.ask(question)
    lead, dash, _ = answer.answer.partition(" — ")
    assert dash and fact.lower() in lead.lower() and len(lead.split()) <= 4, answer.answer
    marked = [c.text[s:e] for c in answer.cited for s, e in c.answer_spans]
    assert any(fact.lower() in m.lower() for m in marked)


@pytest.mark.parametrize("question, source, fact", ANSWERABLE[:3] + ANSWERABLE[4:6])
def test_generated_answers_are_checked_and_cited(bot, question, source, fact):
    answer = bot.ask(question, mode="generate")
    assert not answer.abstained, answer.answer
    assert fact.lower() in answer.answer.lower()
    assert any(fact.lower() in c.text.lower() for c in answer.cited)


@pytest.mark.parametrize("mode", ["auto", "generate", "extractive"])
@pytest.mark.parametrize("question", UNANSWERABLE)
def test_questions_the_documents_do_not_answer_abstain(bot, mode, question):
    answer = bot.ask(question, mode=mode)
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.kind == "none"
    assert not answer.cited


def test_the_small_model_would_answer_from_memory_and_the_check_removes_it(bot):
    """Why claims are checked in code: asked directly, the model adds what no passage says."""
    question = "What is the capital of France?"
    hits = bot.retriever.search(question, 4)
    texts = [h.chunk.text for h in hits]
    invented = "The capital of France is Paris [1]. Madrid is the Spanish capital [1]."
    kept, _, removed = check_claims(invented, texts, [""] * len(texts))
    assert "Paris" not in kept and removed == ["The capital of France is Paris [1]."]
    for mode in ("auto", "generate", "extractive"):
        assert "Paris" not in bot.ask(question, mode=mode).answer


def test_answer_format_and_offsets(bot):
    answer = bot.ask("What festival takes place in Bunol?", mode="generate")
    data = answer.to_dict()
    assert data["version"] == ANSWER_VERSION == 4
    assert set(data) == {"version", "question", "rewritten_question", "answer", "abstained", "kind", "lead",
                         "mode", "backend", "citations"}
    assert data["mode"] in ("generate", "extractive") and data["kind"] == "answer"
    assert json.loads(answer.to_json()) == data
    keys = {"n", "cited", "doc_id", "chunk_id", "source", "title", "page", "start", "end", "text",
            "highlights", "score", "answer_spans", "collection"}
    assert [c["n"] for c in data["citations"]] == list(range(1, len(data["citations"]) + 1))
    for c in data["citations"]:
        assert set(c) == keys
        text = read(bot.corpus / c["source"]).text
        assert text[c["start"]:c["end"]] == c["text"]
        for s, e in c["highlights"] + c["answer_spans"]:
            assert 0 <= s < e <= len(c["text"])
    pdf = next(c for c in answer.cited if c.source == "spain.pdf")
    assert pdf.page == 2


def test_doc_filter_restricts_both_retrievers(bot):
    answer = bot.ask("What is the capital of Belgium?", docs=["lighthouse.txt"])
    assert {c.source for c in answer.citations} == {"lighthouse.txt"}
    assert answer.abstained
    with pytest.raises(ValueError, match="no indexed document"):
        bot.ask("anything", docs=["nope.txt"])


def test_every_hit_carries_its_true_dense_similarity(bot):
    # BM25-only hits take their vectors from the store instead of embedding again
    query = "lighthouse keeper logbook storms"
    hits = bot.retriever.search(query, 8)
    q = bot.embedder.embed([query])[0]
    texts = bot.embedder.embed([h.chunk.text for h in hits])
    for hit, vec in zip(hits, texts):
        assert hit.similarity == pytest.approx(sum(a * b for a, b in zip(q, vec)), abs=1e-4)


def test_k_sets_the_number_of_passages(bot):
    assert len(bot.ask("Tell me about Belgium", k=2).citations) <= 2
    assert len(bot.ask("Tell me about the Ministry of State Security", k=6).citations) == 6


def test_empty_question_is_refused(bot):
    with pytest.raises(ValueError, match="empty"):
        bot.ask("   ")


def test_streaming_yields_text_then_the_checked_answer(bot):
    items = list(bot.stream("When was Hollowmere Lighthouse first lit?", mode="generate"))
    assert isinstance(items[-1], Answer)
    assert all(isinstance(i, str) for i in items[:-1]) and len(items) > 2
    quoted = list(bot.stream("When was Hollowmere Lighthouse first lit?"))  # auto: one piece, the quote
    assert len(quoted) == 2 and quoted[0] == quoted[1].answer


def test_a_follow_up_is_rewritten_from_the_previous_answer_and_answered(bot):
    first = bot.chat("Which platform did the Ministry of State Security join?", history=[])
    history = [{"role": "user", "content": first.question},
               {"role": "assistant", "content": first.answer}]
    follow = bot.chat("When did it join?", history=history)
    assert follow.rewritten_question and "it" not in follow.rewritten_question.lower().split()
    assert "ministry" in follow.rewritten_question.lower()
    assert not follow.abstained and "monday" in follow.answer.lower()


LIGHTHOUSE_TALK = [{"role": "user", "content": "When was Hollowmere Lighthouse first lit?"},
                   {"role": "assistant", "content": "3 March 1871 [1]"}]


def test_a_follow_up_stays_in_the_conversations_document(bot):
    # no word of it is in the lighthouse's log, yet that is what the user is reading about
    follow = bot.chat("What was the weather like?", history=LIGHTHOUSE_TALK)
    assert not follow.abstained
    assert {c.source for c in follow.citations} == {"lighthouse.txt"}
    # ...and the answer says it is only the nearest passage, in every mode (the LLM is not asked)
    assert follow.answer.startswith(WEAK_TEXT)
    written = bot.chat("What was the weather like?", history=LIGHTHOUSE_TALK, mode="generate")
    assert written.answer.startswith(WEAK_TEXT) and written.backend == "extractive"
    # short turns since do not make it forget what the conversation is about
    chatter = [{"role": "user", "content": "Really?"}, {"role": "assistant", "content": "Yes."}] * 4
    follow = bot.chat("What was the weather like?", history=LIGHTHOUSE_TALK + chatter)
    assert not follow.abstained and {c.source for c in follow.citations} == {"lighthouse.txt"}


@pytest.mark.parametrize("question, source, fact", [
    ("Which platform did the ministry join?", "seed.txt", "WeChat"),
    ("What is the capital of Belgium?", "belgium.md", "Brussels"),
])
def test_a_follow_up_on_another_subject_is_answered_from_its_document(bot, question, source, fact):
    follow = bot.chat(question, history=LIGHTHOUSE_TALK)
    assert not follow.abstained and fact.lower() in follow.answer.lower()
    assert any(c.source == source and fact.lower() in c.text.lower() for c in follow.citations)


def test_a_follow_up_after_a_change_of_subject_follows_the_new_subject(bot):
    history = LIGHTHOUSE_TALK + [{"role": "user", "content": "Which platform did the ministry join?"},
                                 {"role": "assistant", "content": "WeChat [1]"}]
    follow = bot.chat("When did it join?", history=history)
    assert not follow.abstained and "monday" in follow.answer.lower()
    assert any(c.source == "seed.txt" and "Monday" in c.text for c in follow.citations)


def test_a_change_of_subject_is_answered_even_after_a_long_document(tmp_path, embedder):
    # the conversation's document has more passages than are shown: they must not crowd out the others
    folder = tmp_path / "docs"
    folder.mkdir()
    log = [f"In {1872 + i} the keeper of Hollowmere Lighthouse logged {3 + i % 7} gales and trimmed "
           f"the wick {20 + i} times before the {('spring', 'summer', 'autumn', 'winter')[i % 4]} "
           "inspection." for i in range(110)]
    (folder / "log.txt").write_text("The Keeper's Log\n\n" + "\n\n".join(log), encoding="utf-8")
    (folder / "seed.txt").write_text((ROOT / "seeds" / "mss-joins-wechat.txt").read_text("utf-8"), "utf-8")
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none"), embedder=embedder)
    assert not bot.ingest([folder]).failed
    history = [{"role": "user", "content": "How many gales did the keeper log in 1901?"},
               {"role": "assistant", "content": "In 1901 the keeper of Hollowmere Lighthouse logged 4 gales [1]"}]
    for k in (4, 10):
        follow = bot.chat("Which platform did the ministry join?", history=history, k=k)
        assert not follow.abstained and "wechat" in follow.answer.lower()
        assert any(c.source == "seed.txt" and "WeChat" in c.text for c in follow.citations if c.cited)


@pytest.mark.parametrize("history, says", [
    ("Which platform?", "history must be a list"),
    (["Which platform?"], r"history\[0\] must be"),
    ([{"role": "user", "content": "Which platform?"}, {"role": "assistant", "content": 5}], r"history\[1\]"),
    ([{"role": "user", "content": []}], r"history\[0\]"),
])
def test_a_malformed_history_is_refused_with_what_is_wrong(bot, history, says):
    with pytest.raises(ValueError, match=says):
        bot.chat("When did it join?", history=history)


def test_a_message_without_content_is_skipped(bot):
    history = [{"role": "user", "content": None}] + LIGHTHOUSE_TALK + [{"role": "assistant"}]
    follow = bot.chat("When was it automated?", history=history)
    assert not follow.abstained and "1987" in follow.answer
    assert any(c.source == "lighthouse.txt" and "1987" in c.text for c in follow.citations)


def test_empty_index_says_so(tmp_path, embedder):
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "empty", backend="none"), embedder=embedder)
    answer = bot.ask("Anything?")
    assert answer.abstained and "No documents are indexed" in answer.answer


@pytest.mark.parametrize("question", [
    "What is the capital of Belgium? " + "Please answer carefully. " * 4200,  # ~100 KB
    "Quelle plateforme le ministère de la Sécurité d'État a-t-il rejointe ?",
    "国家安全部加入了哪个平台？",
    "¿?¡!…",
])
def test_long_and_non_english_questions_get_an_answer_object(bot, question):
    answer = bot.ask(question)
    assert isinstance(answer, Answer) and answer.question == question
    assert answer.abstained or answer.cited


def test_the_prompt_numbers_the_passages_and_says_what_to_do(bot):
    hits = bot.retriever.search("What festival takes place in Bunol?", 3)
    messages = build_messages("What festival takes place in Bunol?", hits)
    assert "[1]" in messages[-1]["content"] and "[3]" in messages[-1]["content"]
    assert "NOT FOUND" in messages[0]["content"]


# ----------------------------------------------------------------------------- a whole document
FACTS = json.loads((ROOT / "eval" / "summary-facts.json").read_text())


@pytest.mark.parametrize("mode", ["auto", "generate"])
def test_a_summary_covers_the_key_facts_and_cites_every_sentence(seed_bot, mode):
    answer = seed_bot.ask(FACTS["question"], mode=mode)
    assert answer.kind == "summary" and not answer.abstained
    text = answer.answer.lower()
    covered = [f["fact"] for f in FACTS["facts"] if any(p.lower() in text for p in f["any"])]
    if answer.mode == "extractive":  # the bundled model's own summary may cover fewer; it is checked below
        # 5 of the 6 facts written down before the summarizer was built: it misses the privacy
        # concerns (a sentence of low centrality); docs/evaluation.md says so
        assert len(covered) >= 5, covered
    from index.text.sentences import sentence_spans

    for s, e in sentence_spans(answer.answer):
        assert "[" in answer.answer[s:e], f"uncited: {answer.answer[s:e]!r}"
    texts = [c.text for c in answer.citations]
    kept, _, removed = check_claims(answer.answer, texts, [c.title or "" for c in answer.citations])
    assert not removed, removed


@pytest.mark.parametrize("question", ["Who wrote the article?", "Who is the author?", "Who wrote this?"])
def test_who_wrote_it_is_answered_from_the_byline(seed_bot, question):
    answer = seed_bot.ask(question)
    assert answer.kind == "author" and not answer.abstained
    assert answer.answer.startswith("David Baker")
    (cite,) = answer.cited
    assert any(cite.text[s:e] == "David Baker" for s, e in cite.answer_spans)


def test_the_title_is_answered_and_a_missing_date_is_said(seed_bot):
    title = seed_bot.ask("What is the title of the article?")
    assert title.kind == "title" and "MI5" in title.answer and title.cited
    date = seed_bot.ask("When was the article published?")
    assert date.kind == "date" and date.abstained and "does not say" in date.answer


def test_summarize_one_document_among_several(bot):
    answer = bot.summarize("lighthouse.txt")
    assert answer.kind == "summary" and {c.source for c in answer.cited} == {"lighthouse.txt"}
    several = bot.ask("Summarize the article.")
    assert several.abstained and "which one" in several.answer
    about = bot.ask("Summarize the article about the lighthouse.")
    assert {c.source for c in about.cited} == {"lighthouse.txt"}

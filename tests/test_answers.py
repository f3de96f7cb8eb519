"""Answers with the real bundled models: right citations, abstention, the answer format."""

from __future__ import annotations

import json

import pytest

from assistant import Answer, Assistant, Settings
from assistant.answer import ABSTAIN_TEXT, clean_markers, evidence, finalize, unsupported_words
from index.readers import read
from tests.conftest import build_corpus

pytestmark = pytest.mark.slow

ANSWERABLE = [
    # (question, source that must be cited, a fact the answer must state)
    ("Which platform did the Ministry of State Security join?", "seed.txt", "WeChat"),
    ("When did the ministry join WeChat?", "seed.txt", "Monday"),
    ("When do the security law reforms take effect?", "seed.txt", "July"),
    ("When was Hollowmere Lighthouse first lit?", "lighthouse.txt", "1871"),
    ("How tall is the Hollowmere lighthouse?", "lighthouse.txt", "41"),
    ("What festival takes place in Bunol?", "spain.pdf", "Tomatina"),
    ("What is the capital of Belgium?", "belgium.md", "Brussels"),
    ("Which river forms part of the border between Germany and France?", "germany.html", "Rhine"),
    ("What currency does Switzerland use?", "switzerland.docx", "franc"),
]
UNANSWERABLE = [
    "What is the capital of France?",  # the corpus is about France's neighbours
    "How do I bake sourdough bread?",
    "Who won the 2018 football World Cup?",
    "What is the population of Spain?",
    "When did the ministry join Twitter?",
    "How many fishermen were rescued from the Titanic?",
]
WEAKER = "What is Belgium known for?"  # evidence enough to answer (0.75), not to quote (0.85)


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


@pytest.mark.parametrize("mode", ["auto", "generate", "extractive"])
@pytest.mark.parametrize("question, source, fact", ANSWERABLE)
def test_answerable_questions_cite_the_right_passage(bot, mode, question, source, fact):
    answer = bot.ask(question, mode=mode)
    assert not answer.abstained, answer.answer
    assert fact.lower() in answer.answer.lower()
    cited = answer.cited
    assert cited, "an answer must cite a passage"
    assert {c.source for c in cited} == {source}
    assert any(fact.lower() in c.text.lower() for c in cited)
    for c in cited:
        assert c.highlights, "cited passages show what supports the answer"
        assert any(fact.lower() in c.text[s:e].lower() for s, e in c.highlights) or answer.mode == "generate"


@pytest.mark.parametrize("mode", ["auto", "generate", "extractive"])
@pytest.mark.parametrize("question", UNANSWERABLE)
def test_off_topic_questions_abstain(bot, mode, question):
    answer = bot.ask(question, mode=mode)
    assert answer.abstained
    assert answer.answer == ABSTAIN_TEXT
    assert not answer.cited
    assert "Paris" not in answer.answer


def test_the_small_model_would_answer_france_from_memory(bot):
    """Why abstention is enforced in code: asked directly, the model says Paris."""
    from assistant.answer import build_messages

    hits = bot.retriever.search("What is the capital of France?", 4)
    raw = "".join(bot.llm.stream(build_messages("What is the capital of France?", hits), 60))
    assert "Paris" in raw
    titles = {d.doc_id: d.title for d in bot.documents()}
    assert "Paris" in unsupported_words(clean_markers(raw, len(hits)), hits, titles)


class _CountingLLM:
    """The bundled model, counting how often it is asked."""

    def __init__(self, llm):
        self.llm, self.name, self.calls = llm, llm.name, 0

    def stream(self, messages, max_tokens):
        self.calls += 1
        yield from self.llm.stream(messages, max_tokens)


def test_auto_mode_quotes_strong_evidence_and_asks_the_llm_otherwise(bot, bundled_llm):
    counting = _CountingLLM(bundled_llm)
    auto = Assistant(bot.settings, embedder=bot.embedder, llm=counting)
    assert auto.settings.mode == "auto"
    strong = auto.ask("When was Hollowmere Lighthouse first lit?")
    assert (strong.mode, strong.backend, counting.calls) == ("extractive", "extractive", 0)
    assert "1871" in strong.answer and strong.cited
    # evidence good enough to answer but not to quote: the model writes, the checks still apply
    hits = auto.retriever.search(WEAKER, 4)
    ev = evidence(WEAKER, hits, auto.embedder, {d.doc_id: d.title for d in auto.documents()})
    assert ev.answerable and not ev.strong, ev.score
    weaker = auto.ask(WEAKER)
    assert counting.calls == 1 and weaker.backend == bundled_llm.name
    assert Settings.from_env(index_dir="x", llm_url="http://127.0.0.1:1/v1").mode == "generate"
    server = auto.settings.with_(backend="openai", llm_url="http://127.0.0.1:1/v1")
    assert server.mode == "generate" and server.with_(backend="bundled").mode == "auto"
    assert Settings.from_env(index_dir="x", mode="auto").with_(backend="none").mode == "auto"


def test_answer_format_and_offsets(bot):
    answer = bot.ask("What festival takes place in Bunol?", mode="generate")
    data = answer.to_dict()
    assert data["version"] == 1
    assert set(data) == {"version", "question", "rewritten_question", "answer", "abstained", "mode",
                         "backend", "citations"}
    assert data["mode"] in ("generate", "extractive")
    assert data["backend"].startswith("bundled:")
    assert json.loads(answer.to_json()) == data
    keys = {"n", "cited", "doc_id", "chunk_id", "source", "title", "page", "start", "end", "text",
            "highlights", "score"}
    assert [c["n"] for c in data["citations"]] == list(range(1, len(data["citations"]) + 1))
    for c in data["citations"]:
        assert set(c) == keys
        text = read(bot.corpus / c["source"]).text
        assert text[c["start"]:c["end"]] == c["text"]
        for s, e in c["highlights"]:
            assert 0 <= s < e <= len(c["text"])
    scores = [c["score"] for c in data["citations"]]
    assert scores == sorted(scores, reverse=True)
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


def test_chat_follow_up_uses_the_conversation(bot):
    first = bot.chat("Which platform did the Ministry of State Security join?", history=[])
    history = [{"role": "user", "content": first.question},
               {"role": "assistant", "content": first.answer}]
    follow = bot.chat("When did it join?", history=history)
    assert follow.rewritten_question and follow.rewritten_question != "When did it join?"
    assert not follow.abstained
    assert "monday" in follow.answer.lower()


def test_invalid_markers_are_removed():
    assert clean_markers("Brussels [1][7] is the capital [2, 9].", 2) == "Brussels [1] is the capital [2]."


def test_finalize_abstains_on_not_found_and_unsupported(bot):
    hits = bot.retriever.search("What is the capital of Belgium?", 4)
    q = "What is the capital of Belgium?"
    ev = evidence(q, hits, bot.embedder)
    assert finalize(q, "NOT FOUND", hits, ev)[1] is True
    text, abstained, fell_back = finalize(q, "The capital is Antwerp [1].", hits, ev)
    assert "Antwerp" not in text


def test_finalize_rejects_a_when_answer_without_a_date(bot):
    q = "When was Hollowmere Lighthouse first lit?"
    hits = bot.retriever.search(q, 4)
    ev = evidence(q, hits, bot.embedder)
    text, abstained, fell_back = finalize(q, "The lighthouse is a famous lighthouse [1].", hits, ev)
    assert fell_back and "1871" in text


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


def test_finalize_rejects_an_answer_that_restates_the_question(bot):
    q = "Which river forms part of the border between Germany and France?"
    hits = bot.retriever.search(q, 4)
    ev = evidence(q, hits, bot.embedder)
    text, abstained, fell_back = finalize(
        q, "The river forms part of the border between Germany and France [1].", hits, ev)
    assert fell_back and "Rhine" in text

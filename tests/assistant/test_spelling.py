"""Typo correction of questions (``assistant.pipeline.spelling``): model-free rules with a fake index
vocabulary, and one real index to show the answer a typo used to lose."""

from __future__ import annotations

import re

import pytest

from assistant.pipeline.spelling import MAX_LETTERS, MAX_TRIED, correct, edits, english_words, is_english
from index.text.terms import terms

# the passages' words, and what the keyword index would say of their terms
PASSAGES = ("The Ministry of State Security joined the platform WeChat; the new security laws take effect "
            "in July. The hall of the tower. os.getpid() returns. La Tomatina in Bunol. Handel wrote it. "
            "Latent heat. A tender. See the wiki; sync the files; read Ovid; a report.")
HELD = {}
for t in terms(PASSAGES):
    HELD[t] = HELD.get(t, 0) + 1


def frequency(words):
    return {w: HELD.get(w, 0) for w in words}


def spelt(word):  # as the assistant's: the word, in lower case, in a passage
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", PASSAGES) is not None


def fix(question, known=("author", "summarize")):
    return correct(question, frequency, spelt, known)


def test_edits_are_one_change_away_without_repeats():
    found = edits("teh")
    assert "the" in found and "tech" in found and "th" in found and "tea" in found
    assert len(found) == len(set(found)) and "teh" not in found
    assert found[0] == "eth"  # swaps first


@pytest.mark.parametrize("typed, meant", [
    ("When did the minstry join WeChat?", "When did the ministry join WeChat?"),  # a letter dropped
    ("Which platfrom did it join?", "Which platform did it join?"),  # two swapped
    ("when will the new secrity laws take effect?", "when will the new security laws take effect?"),
    ("Whcih platform did the ministery join?", "Which platform did the ministry join?"),  # capitalised stopword
    ("which platform did teh ministry join", "which platform did the ministry join"),  # a short stopword
    ("When did it jion?", "When did it join?"),  # a short word: two letters swapped
    ("Whcih platform? Whcih ministry?", "Which platform? Which ministry?"),  # each sentence's start
    ("who is the autor", "who is the author"),  # a command word no document holds
])
def test_a_typo_becomes_the_word_the_documents_use(typed, meant):
    assert fix(typed) == meant


@pytest.mark.parametrize("question", [
    "How tall is the hall?",  # "tall" is English: never turned into "hall", though the index holds only that
    "Who was the sender?",  # "send" + "er": English, though the passages say "tender"
    "Why dont they reply? Why cant I? youre sure? theyre late?",  # contractions without apostrophes
    "Who lamented the decision?",  # English (the word list), though "latented" has the stem of "latent"
    "What about wechatts?",  # "wechats" has WeChat's stem, but is no English word and no passage has it
    "How do I connect to wifi?",  # short, and not two letters swapped: maybe a word the lists lack ("wiki")
    "How do I use async?",  # nor "sync"
    "What did covid change?",  # "Ovid" is in a passage, but only capitalised
    "Who founded Zxqwerty Corp?",  # a name the documents lack stays a name they lack
    "Who is Jonh Smith?",  # capitalised mid-question: maybe a name
    "What does os.getpd return?",  # code
    "What did covid19 change?",  # digits
    "hwo did it join?",  # "who" or "how": too close to call
    "What is a blorptastic?",  # nothing one edit away
    "Where is the ministry's new platform?",  # every word held or English
    "WHEN DID THE MINSTRY JOIN?",  # all capitals: maybe an acronym
    "Is the ﬁnd here?",  # a ligature from a PDF: not a-z
    "Sie sind hier",  # "sie" and "hier" are one edit from "she" and "her", but not by a swap
    "What is the " + "minstry" * 3 + "?",  # longer than MAX_LETTERS
])
def test_what_may_not_be_a_typo_is_left_alone(question):
    assert fix(question) == question


def test_a_held_word_is_never_changed():
    # "bunol" is no English word, but the index holds it
    assert fix("What happens in bunol?") == "What happens in bunol?"


def test_at_most_a_few_words_are_tried():
    typed = " ".join(["minstry"] * (MAX_TRIED + 2))
    assert fix(typed).split().count("ministry") == MAX_TRIED


def test_a_very_long_word_costs_nothing():
    assert fix("x" * 2000) == "x" * 2000 and len("x" * 2000) > MAX_LETTERS


@pytest.mark.parametrize("word, english", [
    ("tall", True), ("sender", True), ("tied", True), ("stopped", True), ("cities", True), ("login", True),
    ("dont", True), ("isnt", True), ("theyre", True), ("wont", True),
    ("minstry", False), ("platfrom", False), ("roomates", False), ("teh", False), ("jion", False),
])
def test_english_words_with_their_endings(word, english):
    assert is_english(word) is english


def test_the_english_word_list_joins_two_lists():
    words = english_words()
    assert len(words) > 150_000
    assert {"tall", "tower", "lighthouse", "painted", "phlogiston"} <= words
    assert not {"minstry", "platfrom", "teh"} & words


@pytest.mark.slow
def test_a_question_with_typos_is_answered_and_shows_how_it_was_read(tmp_path, embedder):
    from assistant import Assistant, Settings
    from tests.support import ROOT

    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none"), embedder=embedder)
    assert bot.ask("When did the minstry join WeChat?").rewritten_question is None  # nothing indexed yet
    assert not bot.ingest([ROOT / "seeds"]).failed
    answer = bot.ask("When did the minstry join WeChat?")
    assert not answer.abstained and "Monday" in answer.answer
    assert answer.rewritten_question == "When did the ministry join WeChat?"
    assert answer.question == "When did the minstry join WeChat?"
    plain = bot.ask("When did the ministry join WeChat?")
    assert plain.rewritten_question is None
    assert bot.ask("Whcih platfrom did the ministery join?").answer.startswith("WeChat")
    follow = bot.chat("When did it jion?", history=[{"role": "user", "content": "Which platform did the ministry join?"},
                                                    {"role": "assistant", "content": "WeChat [1]"}])
    assert "join" in follow.rewritten_question and "Monday" in follow.answer
    after_typo = bot.chat("When did it join?", history=[{"role": "user", "content": "Which platfrom did the minstry join?"},
                                                        {"role": "assistant", "content": "WeChat [1]"}])
    assert "minstry" not in after_typo.rewritten_question and "Monday" in after_typo.answer


@pytest.mark.slow
def test_a_word_only_the_documents_know_is_looked_up_in_their_passages(tmp_path, embedder):
    from assistant import Assistant, Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gadget.txt").write_text("The frobnitz spins twice a day. Ask Zorblatt about the gizmo.\n")
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none"), embedder=embedder)
    assert not bot.ingest([docs]).failed
    assert any("frobnitz" in text for text in bot.index.catalog.texts_with_term("frobnitz", 3))
    assert bot.index.catalog.texts_with_term("zzyzx", 3) == []
    answer = bot.ask("How often does the frobnits spin?")
    assert answer.rewritten_question == "How often does the frobnitz spin?" and "twice" in answer.answer
    assert bot.ask("What does zorblat know?").rewritten_question is None  # a name: only capitalised there

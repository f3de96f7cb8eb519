"""Conversations kept in the data folder, their ratings, and the QA file made of those ratings."""

from __future__ import annotations

import json

import pytest

from assistant import Assistant, Settings
from assistant.conversations import ConversationStore
from assistant.errors import ConversationNotFound
from assistant.evaluation import load_qa
from assistant.evaluation.feedback import feedback_rows, write_rows
from assistant.types import Answer
from index.embedding.embedder import HashEmbedder

LIGHTHOUSE = ("# Hollowmere Lighthouse\n\nHollowmere Lighthouse was first lit on 3 March 1871. "
              "The tower is 41 metres tall and its lamp can be seen from 20 nautical miles.\n")


@pytest.fixture()
def bot(tmp_path, catalog_url):
    """On each catalog: conversations live in the data folder, or in the PostgreSQL database."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text(LIGHTHOUSE)
    b = Assistant(Settings.from_env(env={}, backend="none", index_dir=tmp_path / "idx", catalog_url=catalog_url),
                  embedder=HashEmbedder())
    b.ingest([docs])
    return b


def test_a_conversation_is_kept_and_resumed_after_a_restart(bot, tmp_path, catalog_url):
    conv = bot.new_conversation()
    first = bot.chat("When was Hollowmere Lighthouse first lit?", None, conversation=conv.id)
    bot.chat("How tall is it?", None, conversation=conv.id)
    again = Assistant(bot.settings, embedder=HashEmbedder())  # another process, later
    stored = again.conversation(conv.id)
    assert [t.question for t in stored.turns] == ["When was Hollowmere Lighthouse first lit?", "How tall is it?"]
    assert stored.title == "When was Hollowmere Lighthouse first lit?"
    assert stored.turns[0].answer == first and stored.turns[0].collections == ("default",)
    assert stored.history()[0] == {"role": "user", "content": "When was Hollowmere Lighthouse first lit?"}
    assert [c.id for c in again.conversations()] == [conv.id]
    assert (tmp_path / "idx" / "conversations.sqlite3").exists() == (catalog_url is None)


def test_each_user_sees_only_their_own(bot):
    mine = bot.new_conversation(user="ann")
    bot.chat("When was Hollowmere Lighthouse first lit?", None, conversation=mine.id, user="ann")
    assert [c.id for c in bot.conversations("ann")] == [mine.id]
    assert bot.conversations("bob") == [] and bot.conversations() == []
    with pytest.raises(ConversationNotFound, match="no conversation"):
        bot.conversation(mine.id, user="bob")
    with pytest.raises(ConversationNotFound):
        bot.chat("How tall is it?", None, conversation=mine.id, user="bob")
    assert len(bot.conversation(mine.id, user="ann").turns) == 1, "bob's question was not added"


def test_rename_delete_export_and_unknown_ids(bot):
    conv = bot.new_conversation()
    answer = bot.chat("When was Hollowmere Lighthouse first lit?", None, conversation=conv.id)
    bot.conversation_store.rename(conv.id, "  The lighthouse  ")
    assert bot.conversation(conv.id).title == "The lighthouse"
    with pytest.raises(ValueError, match="cannot be empty"):
        bot.conversation_store.rename(conv.id, "  ")
    text = bot.conversation(conv.id).to_markdown()
    assert text.startswith("# The lighthouse\n") and "**Q:** When was Hollowmere" in text
    assert answer.cited
    assert "[^1]" in text and "[^1]: lighthouse.md" in text and "[1]" not in text.split("[^1]:")[0]
    for call in (lambda: bot.conversation("nope"), lambda: bot.conversation_store.delete("nope"),
                 lambda: bot.conversation_store.rename("nope", "x"), lambda: bot.rate("nope", 1, 1)):
        with pytest.raises(ConversationNotFound, match="no conversation 'nope'"):
            call()
    bot.conversation_store.delete(conv.id)
    assert bot.conversations() == []


def test_ratings_become_a_qa_file_the_evaluation_reads(bot, tmp_path):
    conv = bot.new_conversation()
    good = bot.chat("When was Hollowmere Lighthouse first lit?", None, conversation=conv.id)
    bot.chat("How far can its lamp be seen?", None, conversation=conv.id)
    bot.chat("Who painted the tower?", None, conversation=conv.id)
    rating = bot.rate(conv.id, 1, 1)
    assert rating.answer == good
    assert good.cited and rating.versions == {"lighthouse.md": bot.documents()[0].hash}
    bot.rate(conv.id, 2, -1, correction="20 nautical miles")
    bot.rate(conv.id, 3, -1)  # no correction: nothing says what is right
    with pytest.raises(ValueError, match="1 \\(good\\) or -1"):
        bot.rate(conv.id, 1, 5)
    with pytest.raises(ValueError, match="has no turn 9"):
        bot.rate(conv.id, 9, 1)
    rows, left_out = feedback_rows(bot.conversation_store.ratings(), "default")
    assert left_out == 1 and len(rows) == 2
    assert rows[1]["answers"] == ["20 nautical miles"] and rows[1]["feedback"]["rating"] == -1
    assert feedback_rows(bot.conversation_store.ratings(), "other") == ([], 0)
    path = tmp_path / "feedback.jsonl"
    write_rows(path, rows)
    questions = load_qa(path)
    assert [q.q for q in questions] == ["When was Hollowmere Lighthouse first lit?", "How far can its lamp be seen?"]
    assert json.loads(path.read_text().splitlines()[0])["feedback"]["conversation"] == conv.id


def test_a_rating_is_kept_after_its_conversation_is_deleted(tmp_path):
    store = ConversationStore(tmp_path)
    bot_answer = Answer("q?", "The documents do not say.", True, "extractive", "none", [])
    conv = store.create()
    store.add_turn(conv.id, "q?", bot_answer, ["default"])
    store.rate(conv.id, 1, 1)
    store.delete(conv.id)
    assert [r.question for r in store.ratings()] == ["q?"]
    rows, _ = feedback_rows(store.ratings(), "default")
    assert rows == [{"q": "q?", "unanswerable": True, "split": "test", "feedback": rows[0]["feedback"]}]


def test_a_rating_of_several_collections_is_a_test_of_the_one_that_answered():
    from assistant.conversations import Rating
    from assistant.types import Citation

    cite = Citation(1, True, "d", "c", "otters.md", None, None, 0, 30, "Sea otters hold hands.", [[0, 22]],
                    0.03, collection="animals")
    answer = Answer("Why?", "animals: Sea otters hold hands. [1]", False, "extractive", "none", [cite])
    rating = Rating("conv", 1, "", 1, None, "Why?", ("default", "animals"), answer)
    assert feedback_rows([rating], "default") == ([], 0)
    rows, left_out = feedback_rows([rating], "animals")
    assert left_out == 0 and rows[0]["source"] == ["otters.md"] and rows[0]["answers"] == ["Sea otters hold hands."]

"""The shipped reader on questions of our own: it marks the answer, and finds none where there is none.

Assertions are what a user would see (the answer inside the span it marks; no answer found in
a passage about something else), never exact scores: CPUs differ in their last bits.
"""

from __future__ import annotations

import pytest

from assistant import Assistant, Settings
from assistant.pipeline.reader import shared_reader
from assistant.pipeline.read_evidence import LEAD_MARGIN

pytestmark = pytest.mark.slow

SAX = ("The saxophone family was invented by the Belgian instrument maker Adolphe Sax in 1840. "
       "He wanted an instrument that would be the most powerful and vocal of the woodwinds.")
ISTANBUL = ("Istanbul is the most populous city in Turkey. About 19 percent of the country's people live "
            "there. The city had a population of 14,377,019 in 2014, making it one of the largest cities "
            "in Europe.")
ROTTERDAM = ("In 1898 the White House was built in Rotterdam; at 43 metres it was one of the first "
             "high-rise buildings of Europe. Today the tallest building of Rotterdam is the Maastoren, "
             "which is 165 metres tall.")
BREAD = ("Sourdough bread is made by fermenting dough with wild yeast and lactic acid bacteria. The "
         "starter is fed with flour and water every day.")

ANSWERED = [
    ("Who invented the saxophone?", SAX, "Adolphe Sax"),
    ("When was the saxophone invented?", SAX, "1840"),
    ("What is the population of Istanbul?", ISTANBUL, "14,377,019"),
    ("How tall is the tallest building in Rotterdam?", ROTTERDAM, "165"),
    ("What is fed with flour and water?", BREAD, "starter"),
]
REFUSED = [
    ("Who invented the saxophone?", BREAD),
    ("What is the population of Istanbul?", SAX),
]
# Not asked of the reader alone: "When was the Maastoren opened?" against SAX gets "1840" with a
# clear margin (a date for a "when" question, whoever's: docs/reader.md). The assistant refuses it
# because no passage names the Maastoren (the missing-names rule): the last test.


@pytest.mark.parametrize("question, passage, answer", ANSWERED)
def test_the_reader_marks_the_answer(question, passage, answer):
    best = shared_reader().read(question, [passage], [(0, 0, len(passage))]).best()[0]
    assert answer in best.text and best.margin > LEAD_MARGIN
    assert len(best.text.split()) <= 6


@pytest.mark.parametrize("question, passage", REFUSED)
def test_the_reader_finds_no_answer_where_there_is_none(question, passage):
    best = shared_reader().read(question, [passage], [(0, 0, len(passage))]).best()[0]
    assert best.margin < 0


def test_the_answer_leads_with_the_readers_span(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in (("sax.txt", SAX), ("istanbul.txt", ISTANBUL), ("rotterdam.txt", ROTTERDAM)):
        (docs / name).write_text(text, encoding="utf-8")
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none", mode="extractive"))
    bot.ingest([docs])
    answer = bot.ask("Who invented the saxophone?")
    assert not answer.abstained and answer.lead and "Sax" in answer.lead
    assert answer.answer.startswith(answer.lead) and answer.to_dict()["lead"] == answer.lead
    assert any(c.cited and c.source.endswith("sax.txt") for c in answer.citations)
    population = bot.ask("What is the population of Istanbul?")
    assert population.lead is not None and "14,377,019" in population.lead
    assert bot.ask("Who won the 2018 football World Cup?").abstained
    assert bot.ask("When was the Eiffel Tower opened?").abstained


def test_with_the_reader_off_the_rules_answer_alone(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sax.txt").write_text(SAX, encoding="utf-8")
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none", mode="extractive",
                                      reader="off"))
    assert bot.answering.reader is None
    bot.ingest([docs])
    answer = bot.ask("When was the saxophone invented?")
    assert not answer.abstained and "1840" in answer.answer.split("[1]")[0]

"""SQuADShifts as shipped: the splits (training never sees the evaluation-only articles or a dev
part) and the evaluation sets built from them."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from assistant.evaluation.shifts import (DEV_SHARE, FILES, dev_and_training, evaluation_set, followup_set,
                                         load_articles, training_articles, with_pronoun)


@pytest.mark.parametrize("name", ["reddit", "reviews"])
def test_dev_and_training_parts_are_disjoint_and_whole(name):
    dev, train = dev_and_training(name)
    titles = [a["title"] for a in load_articles(name)]
    assert {a["title"] for a in dev}.isdisjoint(a["title"] for a in train)
    assert sorted(a["title"] for a in dev + train) == sorted(titles)
    assert abs(len(dev) / len(titles) - DEV_SHARE) < 0.01
    assert [a["title"] for a in dev_and_training(name)[0]] == [a["title"] for a in dev]  # seeded: the same
    assert [a["title"] for a in dev_and_training(name, seed=12)[0]] != [a["title"] for a in dev]


def test_the_evaluation_only_articles_are_never_given_for_training():
    with pytest.raises(ValueError, match="evaluation only"):
        training_articles("wiki")
    with pytest.raises(ValueError, match="evaluation only"):
        dev_and_training("wiki")


def test_each_reddit_post_is_a_document_of_its_own():
    posts = load_articles("reddit")
    assert len(posts) == 2035 and all(len(p["paragraphs"]) == 1 for p in posts)
    assert len({p["title"] for p in posts}) == len(posts)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=FILES["wiki"]):
        load_articles("wiki", data=tmp_path)
    (tmp_path / FILES["wiki"]).write_bytes(gzip.compress(b"[1, 2]"))
    with pytest.raises(ValueError, match="SQuAD JSON"):
        load_articles("wiki", data=tmp_path)
    with pytest.raises(ValueError, match="no SQuADShifts set"):
        load_articles("news")


def test_the_wikipedia_set_has_a_dev_and_a_test_half_and_left_out_articles():
    documents, rows = evaluation_set("wiki")
    assert len(documents) == 22  # one article of each half left out of the index
    assert {r["split"] for r in rows} == {"dev", "test"}
    by_split = {s: {r["title"] for r in rows if r["split"] == s} for s in ("dev", "test")}
    assert by_split["dev"].isdisjoint(by_split["test"])  # split by article
    for r in rows:
        if r["kind"] == "answerable":
            text = documents[r["source"]]
            assert all(text[s["start"]:s["end"]] in r["answers"] for s in r["spans"])
        if r["kind"] == "left-out":
            assert r["source"] is None and f"{r['title']}.txt" not in documents
    kinds = [r["kind"] for r in rows if r["split"] == "dev"]
    assert kinds.count("answerable") == 240 and kinds.count("left-out") == 30 and kinds.count("deleted") == 30


@pytest.mark.parametrize("name", ["reddit", "reviews"])
def test_a_dev_part_is_indexed_alone(name):
    documents, rows = evaluation_set(name)
    dev_titles = {a["title"] for a in dev_and_training(name)[0]}
    assert {r["split"] for r in rows} == {"dev"}
    assert {r["title"] for r in rows} <= {t.replace("_", " ") for t in dev_titles}
    assert len(documents) < len(dev_titles)  # some left out, for unanswerable questions
    assert sum(r["kind"] == "answerable" for r in rows) == 240
    assert json.dumps(rows) == json.dumps(evaluation_set(name)[1])  # same seed, same set


@pytest.mark.parametrize("question, name, expected", [
    ("Which city is the capital of Connecticut?", "Connecticut", "Which city is the capital of it?"),
    ("How many days a year does the Australian Senate typically sit?", "Australian Senate",
     "How many days a year does it typically sit?"),
    ("Rotterdam is ranked at which place?", "Rotterdam", "It is ranked at which place?"),
    ("What is the sales tax in Connecticut's capital?", "Connecticut", "What is the sales tax in its capital?"),
])
def test_a_subject_becomes_a_pronoun(question, name, expected):
    assert with_pronoun(question, name) == expected


@pytest.mark.parametrize("question, name", [
    ("What are two types of liquid precipitation?", "Precipitation"),  # a modifier before it
    ("What two things do Latin words fuse?", "Latin"),  # a modifier of the noun after it
    ("What type of precipitation is snow?", "Precipitation"),  # "a type of it"
    ("Is Latin older than Latin script?", "Latin"),  # named twice
    ("Who founded the city?", "Rotterdam"),  # not named
])
def test_a_subject_is_left_alone_where_a_pronoun_would_not_read(question, name):
    assert with_pronoun(question, name) is None


def test_the_followup_set_is_split_by_article_and_ends_each_conversation_elsewhere():
    documents, rows = followup_set()
    assert len(documents) == 24 and len(rows) >= 40
    by_split = {s: {r["source"] for r in rows if r["split"] == s} for s in ("dev", "test")}
    assert by_split["dev"].isdisjoint(by_split["test"])
    for r in rows:
        first, second, third = r["turns"]
        assert second["kind"] == "answerable" and re.search(r"\b[Ii]ts?\b", second["q"])
        assert third["kind"] == "standalone" and r["about_third"] != r["source"]
        text = documents[r["source"]]
        assert text[second["span"]["start"]:second["span"]["end"]] in second["answers"]
    assert json.dumps(rows) == json.dumps(followup_set()[1])

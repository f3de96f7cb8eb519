"""The SQuAD and CoQA converters, on small synthetic files built here (never the real data)."""

from __future__ import annotations

import json

import pytest

from assistant.evaluation.datasets import COQA_FILE, SQUAD_FILE, SquadSizes, convert_coqa, convert_squad, find_input, gold_spans, load_coqa, main, squad_document
from assistant.evaluation import load_conversations, load_qa, normalize_answer
from index.readers import read

ARTICLES = 12
PARAGRAPHS = 6
SIZES = SquadSizes(answerable=20, deleted=4, left_out=4, left_out_articles=1)


def _paragraph(a: int, p: int) -> dict:
    """A paragraph whose three questions each have their own answer word (w<a>x<p>y<q>)."""
    words = [f"w{a}x{p}y{q}" for q in range(3)]
    context = f"In part {p} of topic {a}, the first is {words[0]}. Then came {words[1]}, and {words[2]}."
    qas = [{"id": f"{a}-{p}-{q}", "question": f"Which thing number {q} of part {p} of topic {a}?",
            "answers": [{"text": w, "answer_start": context.index(w)}] * 2} for q, w in enumerate(words)]
    return {"context": context, "qas": qas}


def squad_json(articles: int = ARTICLES) -> dict:
    data = []
    for a in range(articles):
        paragraphs = [_paragraph(a, p) for p in range(PARAGRAPHS)]
        # a question whose answer also occurs in another paragraph: never "deleted"
        paragraphs[0]["qas"].append({"id": f"{a}-shared", "question": f"Where is topic {a}?",
                                     "answers": [{"text": "Shared Town", "answer_start": 0}]})
        paragraphs[0]["context"] = "Shared Town " + paragraphs[0]["context"]
        for qa in paragraphs[0]["qas"][:3]:
            qa["answers"] = [{"text": x["text"], "answer_start": x["answer_start"] + 12}
                             for x in qa["answers"]]
        paragraphs[1]["context"] += " It is near Shared Town."
        # BIG-bench blanked some answers: such a question is skipped
        paragraphs[2]["qas"].append({"id": f"{a}-blank", "question": "Blank?",
                                     "answers": [{"text": "", "answer_start": 0}]})
        data.append({"title": f"Topic_{a}", "paragraphs": paragraphs})
    return {"version": "1.1", "data": data}


def test_gold_spans_fix_offsets_and_skip_blank_answers():
    context = "Super Bowl 50 was won by the Denver Broncos."
    start = context.index("Denver")
    answers = [{"text": "Denver Broncos", "answer_start": start},
               {"text": " Denver Broncos", "answer_start": start - 1},  # leading space: still right
               {"text": "Denver Broncos", "answer_start": start - 1},  # one early: nearest occurrence
               {"text": "", "answer_start": 0}, {"text": "Panthers", "answer_start": 3}]
    assert gold_spans(context, answers) == [("Denver Broncos", start)]


def test_squad_document_offsets_with_and_without_a_deleted_paragraph():
    text, offsets = squad_document("Super_Bowl_50", ["First one.", "Second one.", "Third one."])
    assert text == "Super Bowl 50\n\nFirst one.\n\nSecond one.\n\nThird one.\n"
    assert [text[o:o + 5] for o in offsets] == ["First", "Secon", "Third"]
    text, offsets = squad_document("T", ["First one.", "Second one.", "Third one."], skip=0)
    assert text == "T\n\nSecond one.\n\nThird one.\n" and offsets[0] is None
    assert text[offsets[2]:].startswith("Third")


def test_squad_rows_map_to_offsets_in_the_text_the_reader_returns(tmp_path):
    assert main(["squad", str(_write(tmp_path / "squad.json", squad_json())), str(tmp_path / "out")]) == 0
    rows = load_qa(tmp_path / "out" / "squad.jsonl")
    answerable = [r for r in rows if not r.unanswerable]
    assert answerable and all(r.spans and r.any == r.answers and r.kind == "answerable" for r in answerable)
    for r in answerable:
        text = read(tmp_path / "out" / "docs" / r.source[0]).text
        assert all(text[s.start:s.end] in r.answers for s in r.spans)
        assert text.startswith(r.source[0][:-4].replace("_", " ") + "\n\n")
    assert not any(r.q == "Blank?" for r in rows)


def test_squad_split_by_article_with_both_kinds_of_unanswerable():
    documents, rows = convert_squad(squad_json(), SIZES)
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["title"], r["split"]) == r["split"]  # one split per article
    assert {"dev", "test"} <= set(split_of.values())
    kinds = {(s, k): sum(r["split"] == s and r["kind"] == k for r in rows)
             for s in ("dev", "test") for k in ("answerable", "deleted", "left-out")}
    assert kinds == {("dev", "answerable"): 20, ("dev", "deleted"): 4, ("dev", "left-out"): 4,
                     ("test", "answerable"): 20, ("test", "deleted"): 4, ("test", "left-out"): 4}
    left_out = {r["title"] for r in rows if r["kind"] == "left-out"}
    assert len(left_out) == 2 and all(r["source"] is None and r["unanswerable"]
                                      for r in rows if r["kind"] == "left-out")
    assert not any(f"{t.replace(' ', '_')}.txt" in documents for t in left_out)  # never written
    assert len(documents) == ARTICLES - 2


def test_deleted_questions_have_no_answer_left_in_their_article():
    documents, rows = convert_squad(squad_json(), SIZES)
    deleted = [r for r in rows if r["kind"] == "deleted"]
    assert deleted and all(r["unanswerable"] and not r["spans"] for r in deleted)
    for r in deleted:
        text = normalize_answer(documents[r["source"]])
        assert not any(normalize_answer(a) in text for a in r["answers"])
    # "Shared Town" also stands in another paragraph: its question is never a deleted one
    assert not any(r["answers"] == ["Shared Town"] for r in deleted)
    # the answerable questions never come from a deleted paragraph
    for r in rows:
        if r["kind"] == "answerable":
            text = documents[r["source"]]
            assert all(text[s["start"]:s["end"]] == r["answers"][0] for s in r["spans"])


def test_a_deleted_paragraph_keeps_the_question_out_when_its_answer_stands_elsewhere():
    data = squad_json(articles=4)
    for article in data["data"]:  # every answer of every paragraph also stands in the last one
        words = " ".join(qa["answers"][0]["text"] for p in article["paragraphs"] for qa in p["qas"]
                         if qa["answers"][0]["text"])
        article["paragraphs"].append({"context": f"All of them: {words}.", "qas": []})
    _, rows = convert_squad(data, SquadSizes(answerable=5, deleted=4, left_out=2, left_out_articles=1))
    # deleting the last paragraph (no questions) or any other leaves every answer in place
    assert not [r for r in rows if r["kind"] == "deleted"]


def test_squad_conversion_is_deterministic_and_depends_on_the_seed(tmp_path):
    source = _write(tmp_path / "squad.json", squad_json())
    for out in ("a", "b"):
        assert main(["squad", str(source), str(tmp_path / out)]) == 0
    for name in ["squad.jsonl"] + [f"docs/{p.name}" for p in (tmp_path / "a" / "docs").iterdir()]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    _, other = convert_squad(squad_json(), SIZES, seed=12)
    assert other != convert_squad(squad_json(), SIZES)[1]


def test_output_folder_with_foreign_files_is_refused(tmp_path, capsys):
    source = _write(tmp_path / "squad.json", squad_json())
    (tmp_path / "out" / "docs").mkdir(parents=True)
    (tmp_path / "out" / "docs" / "mine.txt").write_text("keep me")
    assert main(["squad", str(source), str(tmp_path / "out")]) == 2
    assert "mine.txt" in capsys.readouterr().err
    assert (tmp_path / "out" / "docs" / "mine.txt").read_text() == "keep me"


def test_missing_input_says_where_the_sets_are_now(tmp_path, capsys):
    assert main(["squad", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "assistant.evaluation.shifts" in capsys.readouterr().err
    nested = tmp_path / SQUAD_FILE
    nested.parent.mkdir(parents=True)
    nested.write_text("{}")
    assert find_input(tmp_path, SQUAD_FILE) == nested


# --------------------------------------------------------------------------- CoQA
SOURCES = ("mctest", "race", "gutenberg", "cnn", "wikipedia")


def _story(source: str, n: int) -> dict:
    name = f"{source}{n}"
    sentences = [f"{name} met Person{n}x{i} at Place{n}x{i}." for i in range(4)]
    story = " ".join(sentences) + "\n"
    questions, answers = [], []
    for i, sentence in enumerate(sentences):
        start = story.index(sentence)
        questions.append({"input_text": f"Who did they meet next, {i}?", "turn_id": i + 1})
        answers.append({"span_start": start, "span_end": start + len(sentence), "span_text": sentence,
                        "input_text": f"Person{n}x{i}", "turn_id": i + 1})
    questions.append({"input_text": "Was it fun?", "turn_id": 5})
    answers.append({"span_start": 0, "span_end": 5, "span_text": story[:5], "input_text": "Yes",
                    "turn_id": 5})
    questions.append({"input_text": "What was the weather?", "turn_id": 6})
    answers.append({"span_start": -1, "span_end": -1, "span_text": "unknown", "input_text": "unknown",
                    "turn_id": 6})
    extra = {"0": [dict(a, input_text=a["input_text"] + " too") for a in answers]}
    filename = (f"data/gutenberg/txt/Jane Doe___Book {n}.txt/CHAPTER {n}_{'a' * 40}"
                if source == "gutenberg" else f"{name}.txt")
    return {"source": source, "id": f"id{name}", "filename": filename, "name": filename, "story": story,
            "questions": questions, "answers": answers, "additional_answers": extra}


def coqa_json(per_source: int = 6) -> dict:
    return {"version": "1.0", "data": [_story(s, n) for s in SOURCES for n in range(per_source)]}


def test_coqa_uses_only_mctest_race_and_gutenberg(tmp_path):
    source = _write(tmp_path / "coqa.json", coqa_json())
    assert main(["coqa", str(source), str(tmp_path / "out"), "--conversations", "6"]) == 0
    written = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "cnn" not in written and "wikipedia" not in written  # held out: never written
    domains = {p.name.split("-")[0] for p in (tmp_path / "out" / "docs").iterdir()}
    assert domains == {"mctest", "race", "gutenberg"}
    assert len(list((tmp_path / "out" / "docs").iterdir())) == 18  # every story of those domains
    assert {s["source"] for s in load_coqa(source)} == {"mctest", "race", "gutenberg"}


def test_coqa_conversations_map_rationales_and_split_by_story(tmp_path):
    source = _write(tmp_path / "coqa.json", coqa_json())
    main(["coqa", str(source), str(tmp_path / "out"), "--conversations", "6"])
    conversations = load_conversations(tmp_path / "out" / "coqa.jsonl")
    splits = [c.split for c in conversations]
    assert splits.count("dev") == 6 == splits.count("test")
    assert len({c.source for c in conversations}) == 12  # a story is in one split only
    for c in conversations:
        text = read(tmp_path / "out" / "docs" / c.source).text
        first = c.turns[0]
        assert first.answers[0] in text[first.span[0]:first.span[1]]  # "X met <answer> at ..."
        assert first.answers[0].startswith("Person") and first.answers[1] == first.answers[0] + " too"
        assert [t.kind for t in c.turns[4:]] == ["yes/no", "unknown"] and c.turns[5].span is None
    gutenberg = next(c for c in conversations if c.source.startswith("gutenberg"))
    assert read(tmp_path / "out" / "docs" / gutenberg.source).text.startswith("Book ")


def test_coqa_rationale_offsets_hold_exactly():
    documents, rows = convert_coqa(load_coqa_from(coqa_json()), 6)
    stories = {f"{s['source']}-{s['id']}.txt": s for s in coqa_json()["data"]}
    for row in rows:
        text, story = documents[row["source"]], stories[row["source"]]
        for turn, answer in zip(row["turns"], story["answers"]):
            if turn["span"]:
                assert text[turn["span"]["start"]:turn["span"]["end"]] == answer["span_text"]
    assert convert_coqa(load_coqa_from(coqa_json()), 6) == (documents, rows)  # deterministic


def load_coqa_from(data: dict) -> list[dict]:
    return [s for s in data["data"] if s["source"] in ("mctest", "race", "gutenberg")]


def test_coqa_input_is_found_in_the_fetched_folder(tmp_path):
    nested = tmp_path / COQA_FILE
    nested.parent.mkdir(parents=True)
    _write(nested, coqa_json(2))
    assert main(["coqa", str(tmp_path), str(tmp_path / "out"), "--conversations", "3"]) == 0
    with pytest.raises(ValueError, match="not a CoQA file"):
        load_coqa(_write(tmp_path / "bad.json", {"stories": []}))


def _write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path

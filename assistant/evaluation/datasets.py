"""SQuAD- and CoQA-format question sets in the eval formats (the converters ``shifts`` uses).

Nobody on this team wrote these questions (crowd workers did), so thresholds tuned on
their dev splits can be checked on their test splits. The SQuAD v1.1 dev and CoQA files
came from BIG-bench, which can no longer be fetched (docs/evaluation.md); the SQuADShifts
sets ship in the repository (``python -m assistant.evaluation.shifts``). A copy of either
file you have still converts::

    python -m assistant.evaluation.datasets squad squaddev_v1.1.json /tmp/squad   # docs/*.txt + squad.jsonl
    python -m assistant.evaluation.datasets coqa coqa.test.json /tmp/coqa          # docs/*.txt + coqa.jsonl

SQuAD: each Wikipedia article becomes one plain-text document (title line, blank line,
paragraphs separated by blank lines), so every gold answer maps to offsets in the text
the reader returns. Articles are split dev/test by article. Questions are a fixed
sample: answerable ones, and two kinds of unanswerable ones: about articles left out of
``docs/`` ("left-out"), and about a paragraph deleted from an article that stays
indexed ("deleted"; a question is kept only when no gold answer still occurs in the
rest of the article).

CoQA: only the mctest, race and gutenberg stories are used (the rest of the file is held
out: it is dropped as soon as it is read and never written or printed). Every story of
those domains is one document; stories are split dev/test by story, and a fixed sample of
conversations per split is written to ``coqa.jsonl``.

Same input and seed, byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluation.metrics import normalize_answer, question_type

SEED = 11
SQUAD_FILE = "bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json"
COQA_FILE = "bigbench-1.0.0/bigbench/benchmark_tasks/coqa_conversational_question_answering/coqa.test.json"
COQA_SOURCES = ("mctest", "race", "gutenberg")
SPLITS = ("dev", "test")


# --------------------------------------------------------------------------- shared
def find_input(path: Path, relative: str) -> Path:
    """The data file: ``path`` itself, or ``path/relative`` inside a BIG-bench folder.

    Raises:
        ValueError: neither exists (says how to fetch it).
    """
    path = Path(path)
    for candidate in (path, path / relative):
        if candidate.is_file():
            return candidate
    raise ValueError(f"no {Path(relative).name} at {path}; BIG-bench's copy can no longer be fetched "
                     "(docs/evaluation.md): use python -m assistant.evaluation.shifts for the sets that ship "
                     "in the repository, or pass a copy of the file")


def _doc_name(name: str) -> str:
    return re.sub(r"[/\\\x00]", "_", name) + ".txt"


def write_set(out: Path, documents: dict[str, str], questions_file: str, rows: list[dict]) -> None:
    """Write ``out/docs/<name>`` for each document and ``out/<questions_file>``, one row a line.

    Raises:
        ValueError: ``out/docs`` holds files this set does not write (another set or run).
    """
    docs = Path(out) / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    stale = sorted(p.name for p in docs.iterdir() if p.name not in documents)
    if stale:
        raise ValueError(f"{docs} holds {len(stale)} files this set does not write "
                         f"({', '.join(stale[:3])}...); give an empty or new output folder")
    for name in sorted(documents):
        with (docs / name).open("w", encoding="utf-8", newline="\n") as f:
            f.write(documents[name])
    with (Path(out) / questions_file).open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _rng(seed: int, *purpose: str) -> random.Random:
    """A generator per purpose, so changing one sample leaves the others as they were."""
    return random.Random(":".join([str(seed), *purpose]))  # str seeds hash with SHA-512: stable


def _halves(items: list, rng: random.Random) -> dict[str, list]:
    shuffled = list(items)
    rng.shuffle(shuffled)
    half = (len(shuffled) + 1) // 2
    return {"dev": sorted(shuffled[:half]), "test": sorted(shuffled[half:])}


def article_halves(articles: list[dict]) -> dict[str, list[int]]:
    """SQuAD's dev/test split: articles sorted by title, even positions dev, odd test.

    A rule fixed before any tuning (the answer logic was developed on the even positions only).
    """
    ranked = sorted(range(len(articles)), key=lambda i: articles[i]["title"])
    return {"dev": sorted(ranked[0::2]), "test": sorted(ranked[1::2])}


def _contains_tokens(text_norm: str, part_norm: str) -> bool:
    return bool(part_norm) and f" {part_norm} " in f" {text_norm} "


# --------------------------------------------------------------------------- SQuAD
@dataclass(frozen=True)
class SquadSizes:
    """Questions per split (the sample is drawn per split, so dev and test are alike)."""

    answerable: int = 240
    deleted: int = 30
    left_out: int = 30
    left_out_articles: int = 2  # articles per split not written to docs/


def gold_spans(context: str, answers: list[dict]) -> list[tuple[str, int]]:
    """Distinct (answer, start) pairs with ``context[start:start + len(answer)] == answer``.

    Answers are stripped of surrounding whitespace; a start that is off (a few SQuAD
    answers begin one character early) is moved to the nearest occurrence of the answer
    in the paragraph. Empty answers (BIG-bench blanked some) are skipped.
    """
    out: list[tuple[str, int]] = []
    for a in answers:
        raw, start = a.get("text") or "", int(a.get("answer_start", -1))
        text = raw.strip()
        if not text:
            continue
        start += len(raw) - len(raw.lstrip())
        if context[start:start + len(text)] != text:
            found = [m.start() for m in re.finditer(re.escape(text), context)]
            if not found:
                continue
            start = min(found, key=lambda s: abs(s - start))
        if (text, start) not in out:
            out.append((text, start))
    return out


def squad_document(title: str, paragraphs: list[str],
                   skip: int | None = None) -> tuple[str, list[int | None]]:
    """The document text of an article and each paragraph's offset in it (None: ``skip``, deleted)."""
    text = title.replace("_", " ") + "\n\n"
    offsets: list[int | None] = []
    for i, p in enumerate(paragraphs):
        if i == skip:
            offsets.append(None)
            continue
        if offsets and any(o is not None for o in offsets):
            text += "\n\n"
        offsets.append(len(text))
        text += p
    return text + "\n", offsets


Pick = tuple[int, int, int]  # (article, paragraph, question)


def _questions(articles: list[dict], ids, skip: dict[int, int] | None = None) -> list[Pick]:
    """Every question with a gold answer in articles ``ids``, except in paragraphs ``skip``."""
    skip = skip or {}
    return [(i, p, q) for i in ids for p, para in enumerate(articles[i]["paragraphs"]) if skip.get(i) != p
            for q, qa in enumerate(para["qas"]) if gold_spans(para["context"], qa["answers"])]


def _deletable(articles: list[dict], i: int, p: int) -> list[Pick]:
    """Questions of paragraph ``p`` none of whose gold answers occurs in the rest of article ``i``."""
    paragraphs = articles[i]["paragraphs"]
    rest = normalize_answer(squad_document(articles[i]["title"], [x["context"] for x in paragraphs], p)[0])
    return [(i, p, q) for q, qa in enumerate(paragraphs[p]["qas"])
            if (golds := gold_spans(paragraphs[p]["context"], qa["answers"]))
            and not any(_contains_tokens(rest, normalize_answer(g)) for g, _ in golds)]


def _delete_paragraphs(articles: list[dict], ids: list[int], wanted: int,
                       rng: random.Random, seed: int, split: str) -> tuple[dict[int, int], list[Pick]]:
    """Delete one paragraph per article, articles in ``rng`` order, until ``wanted`` questions
    lost their answer; returns {article: paragraph} and those questions."""
    order = list(ids)
    rng.shuffle(order)
    deleted: dict[int, int] = {}
    pool: list[Pick] = []
    for i in order:
        if len(pool) >= wanted:
            break
        p = _rng(seed, split, "delete", articles[i]["title"]).randrange(len(articles[i]["paragraphs"]))
        found = _deletable(articles, i, p)
        if found:
            deleted[i] = p
            pool += found
    return deleted, pool


def _squad_row(article: dict, pick: Pick, kind: str, split: str, name: str, document: str | None,
               offsets: list[int | None] | None) -> dict:
    _, p, q = pick
    para = article["paragraphs"][p]
    qa = para["qas"][q]
    golds = gold_spans(para["context"], qa["answers"])
    spans: list[dict] = []
    if kind == "answerable":
        for answer, start in golds:
            span = {"source": name, "start": offsets[p] + start, "end": offsets[p] + start + len(answer)}
            assert document[span["start"]:span["end"]] == answer, (name, answer)
            if span not in spans:
                spans.append(span)
    answers = list(dict.fromkeys(g for g, _ in golds))
    return {
        "q": qa["question"].strip(), "id": qa["id"], "split": split, "kind": kind,
        "unanswerable": kind != "answerable", "source": None if kind == "left-out" else name,
        "title": article["title"].replace("_", " "), "qtype": question_type(qa["question"]),
        "answers": answers, "any": answers, "spans": spans,
    }


def convert_squad(data: dict, sizes: SquadSizes = SquadSizes(), seed: int = SEED,
                  splits: dict[str, list[int]] | None = None) -> tuple[dict[str, str], list[dict]]:
    """SQuAD JSON (``{"data": [article]}``) → (documents by file name, question rows).

    Articles are split dev/test by article. Per split: ``left_out_articles`` articles are
    not written, and ``left_out`` of their questions sampled; paragraphs are deleted from
    other articles (one per article, articles in random order) until there are at least
    twice ``deleted`` questions whose gold answers no longer occur in their article, and
    ``deleted`` of those are sampled; ``answerable`` questions are sampled from the
    paragraphs that remain. Questions without a non-empty gold answer are skipped.
    ``splits`` (split → article positions) replaces the halves of ``article_halves``.
    """
    articles = data["data"]
    split_of: dict[int, str] = {}
    left_out: set[int] = set()
    deleted: dict[int, int] = {}  # article -> deleted paragraph
    chosen: list[tuple[Pick, str]] = []
    for split, ids in (splits or article_halves(articles)).items():
        split_of.update((i, split) for i in ids)
        gone = sorted(_rng(seed, split, "left-out").sample(ids, min(sizes.left_out_articles, len(ids))))
        left_out.update(gone)
        kept = [i for i in ids if i not in gone]
        removed, pool = _delete_paragraphs(articles, kept, 2 * sizes.deleted, _rng(seed, split, "delete"),
                                           seed, split)
        deleted.update(removed)
        for kind, questions, n in (("left-out", _questions(articles, gone), sizes.left_out),
                                   ("deleted", pool, sizes.deleted),
                                   ("answerable", _questions(articles, kept, removed), sizes.answerable)):
            chosen += [(x, kind) for x in _sample(questions, n, _rng(seed, split, f"{kind}-q"))]

    documents: dict[str, str] = {}
    offsets: dict[int, list[int | None]] = {}
    for i, a in enumerate(articles):
        if i not in left_out:
            documents[_doc_name(a["title"])], offsets[i] = squad_document(
                a["title"], [p["context"] for p in a["paragraphs"]], deleted.get(i))
    order = {s: n for n, s in enumerate(SPLITS)}
    rows = []
    for pick, kind in sorted(chosen, key=lambda x: (order[split_of[x[0][0]]], x[0])):
        i = pick[0]
        name = _doc_name(articles[i]["title"])
        rows.append(_squad_row(articles[i], pick, kind, split_of[i], name, documents.get(name),
                               offsets.get(i)))
    return documents, rows


def _sample(pool: list, n: int, rng: random.Random) -> list:
    return rng.sample(pool, min(n, len(pool)))


def load_squad(path: Path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path} is not a SQuAD file (no data list)")
    return data


# --------------------------------------------------------------------------- CoQA
def load_coqa(path: Path) -> list[dict]:
    """The stories of ``COQA_SOURCES`` only; the other stories are dropped here, unseen."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path} is not a CoQA file (no data list)")
    kept = [s for s in data["data"] if s.get("source") in COQA_SOURCES]
    del data
    return kept


def coqa_title(story: dict) -> str:
    """A Gutenberg chapter is titled by its book ("Ivanhoe by Sir Walter Scott, CHAPTER XXV");
    other stories "Story <file name>"."""
    filename = story.get("filename") or story["id"]
    m = re.match(r"data/gutenberg/txt/(.+?)___(.+?)\.txt/(.+?)_[0-9a-f]{16,}$", filename)
    if m:
        author, book, chapter = (x.strip() for x in m.groups())
        return f"{book} by {author}, {chapter}"
    return f"Story {Path(filename).stem if filename.endswith('.txt') else filename}"


def _turn_kind(answer: dict) -> str:
    said = normalize_answer(answer["input_text"])
    if said == "unknown" or answer.get("span_start", -1) < 0:
        return "unknown"
    return "yes/no" if said in ("yes", "no") else "answerable"


def coqa_turns(story: dict, offset: int) -> list[dict]:
    """The turns of one story; rationale spans moved by ``offset`` (where the story starts)."""
    others = story.get("additional_answers") or {}
    extra = [others[key] for key in sorted(others)]
    turns = []
    for n, (q, a) in enumerate(zip(story["questions"], story["answers"])):
        answers = [a["input_text"]] + [alt[n]["input_text"] for alt in extra if n < len(alt)]
        kind = _turn_kind(a)
        turns.append({
            "turn": int(q["turn_id"]), "q": q["input_text"].strip(),
            "answers": list(dict.fromkeys(x.strip() for x in answers if x and x.strip())),
            "span": None if kind == "unknown" else {"start": a["span_start"] + offset,
                                                    "end": a["span_end"] + offset},
            "qtype": question_type(q["input_text"]), "kind": kind,
        })
    return turns


def _coqa_document(story: dict) -> tuple[str, int]:
    """The document text of a story and where the story starts in it."""
    head = f"{coqa_title(story)}\n\n"
    text = head + story["story"]
    return (text if text.endswith("\n") else text + "\n"), len(head)


def convert_coqa(stories: list[dict], conversations: int = 60,
                 seed: int = SEED) -> tuple[dict[str, str], list[dict]]:
    """CoQA stories (already filtered by ``load_coqa``) → (documents by file name, conversation rows).

    Every story is written. Stories are split dev/test by story within each source;
    ``conversations`` per split are sampled, an equal share from each source.
    """
    documents: dict[str, str] = {}
    rows = []
    for n, src in enumerate(COQA_SOURCES):
        group = sorted((s for s in stories if s["source"] == src), key=lambda s: s["id"])
        share = conversations // len(COQA_SOURCES) + (n < conversations % len(COQA_SOURCES))
        for split, ids in _halves([s["id"] for s in group], _rng(seed, "coqa-split", src)).items():
            picked = set(_sample(ids, share, _rng(seed, "coqa", split, src)))
            for story in group:
                name = _doc_name(f"{src}-{story['id']}")
                documents[name], offset = _coqa_document(story)
                if story["id"] not in picked:
                    continue
                turns = coqa_turns(story, offset)
                for t, a in zip(turns, story["answers"]):
                    if t["span"]:
                        assert documents[name][t["span"]["start"]:t["span"]["end"]] == a["span_text"], name
                rows.append({"conversation": story["id"], "source": name, "split": split, "turns": turns})
    order = {s: n for n, s in enumerate(SPLITS)}
    rows.sort(key=lambda r: (order[r["split"]], r["source"]))
    return documents, rows


# --------------------------------------------------------------------------- CLI
def _counts(rows: list[dict], key: str) -> str:
    out = []
    for split in SPLITS:
        values = [r[key] for r in rows if r["split"] == split]
        kinds = {v: values.count(v) for v in dict.fromkeys(values)}
        out.append(f"{split}: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assistant.evaluation.datasets",
        description="Convert BIG-bench's SQuAD v1.1 dev or CoQA file into documents and an eval file.")
    parser.add_argument("set", choices=["squad", "coqa"])
    parser.add_argument("data", type=Path, help="the JSON file (or a BIG-bench folder holding it)")
    parser.add_argument("out", type=Path, help="output folder: docs/ and squad.jsonl or coqa.jsonl")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--conversations", type=int, default=60, help="CoQA conversations per split")
    args = parser.parse_args(argv)
    try:
        if args.set == "squad":
            documents, rows = convert_squad(load_squad(find_input(args.data, SQUAD_FILE)), seed=args.seed)
            write_set(args.out, documents, "squad.jsonl", rows)
            print(f"{len(documents)} documents in {args.out / 'docs'}, {len(rows)} questions in "
                  f"{args.out / 'squad.jsonl'} ({_counts(rows, 'kind')})")
        else:
            documents, rows = convert_coqa(load_coqa(find_input(args.data, COQA_FILE)),
                                           args.conversations, seed=args.seed)
            write_set(args.out, documents, "coqa.jsonl", rows)
            turns = sum(len(r["turns"]) for r in rows)
            print(f"{len(documents)} documents in {args.out / 'docs'}, {len(rows)} conversations "
                  f"({turns} turns) in {args.out / 'coqa.jsonl'}")
    except (ValueError, OSError) as exc:
        print(f"evalsets: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

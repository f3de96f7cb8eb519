"""The keyword index (SQLite FTS5 in the catalog) and consistent reads, against a real Chroma.

The embedder is the hashing stand-in: these tests are about the keyword side and
the plumbing around it, not about the model.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter, defaultdict

import pytest

from assistant.pipeline.retrieval import Retriever, terms
from index.catalog import Catalog, Chunk, Document
from index.embedding.embedder import HashEmbedder
from index.index import Index
from index.ingest import ingest
from index.removal import remove
from tests.support.concurrency import at_once
from tests.support.corpus import LIGHTHOUSE


@pytest.fixture
def index(tmp_path, catalog_url):
    """An index on each catalog (SQLite, PostgreSQL): the keyword index's tests run on both."""
    idx = Index(tmp_path / "index", HashEmbedder(), catalog_url=catalog_url)
    yield idx
    idx.close()


def keyword_sources(index: Index, query: str, n: int = 10, doc_ids=None) -> list[str]:
    sources = {d.doc_id: d.source for d in index.catalog.documents()}
    return [sources[c.doc_id] for c, _ in index.catalog.keyword_search(query, n, doc_ids)]


def assert_in_step(catalog: Catalog, gone: set[str] = frozenset()) -> None:
    """The keyword index holds exactly the listed chunks' terms: every count, and nothing of ``gone``."""
    held = Counter()
    chunks = catalog.chunks()
    for chunk in chunks:
        held.update(set(terms(chunk.text)))
    count, frequency = catalog.term_stats(sorted(set(held) | gone))
    assert count == len(chunks)
    assert frequency == {t: held.get(t, 0) for t in sorted(set(held) | gone)}


class ReferenceBM25:
    """The in-memory Okapi BM25 the keyword index replaced (k1=1.2, b=0.75), as a yardstick."""

    def __init__(self, chunks: list[Chunk], k1: float = 1.2, b: float = 0.75):
        self.chunks, self.k1, self.b = chunks, k1, b
        self.counts = [Counter(terms(c.text)) for c in chunks]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.avg = sum(self.lengths) / len(self.lengths)
        self.df = Counter(t for c in self.counts for t in c)

    def search(self, query: str, n: int) -> list[Chunk]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(terms(query)):
            if not self.df[term]:
                continue
            idf = math.log(1 + (len(self.chunks) - self.df[term] + 0.5) / (self.df[term] + 0.5))
            for i, counts in enumerate(self.counts):
                tf = counts[term]
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
                    scores[i] += idf * tf * (self.k1 + 1) / norm
        return [self.chunks[i] for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --------------------------------------------------------------------------- analysis
def test_terms_are_lowercased_stemmed_content_words():
    assert terms("The cats were sitting on the mats") == ["cat", "sit", "mat"]
    assert terms("ssh_config, Café and x²!") == ["ssh_config", "café", "x²"]
    assert terms("what is it?") == []


def test_threads_stemming_at_once_get_the_same_stems():
    """Questions are answered on several threads at once (the chat server); each needs its own
    stemmer, or stems come out wrong (a question answered from the wrong sentence) or raise."""
    from index.text import terms as analysis

    words = [f"{stem}{end}" for stem in ("connect", "generat", "happi", "nation", "organiz", "relat")
             for end in ("ing", "ed", "ion", "ional", "ness", "ly", "s")]
    alone = [analysis._stemmer().stemWord(w) for w in words]
    stem = analysis._stem.__wrapped__  # past the cache the threads would share
    runs = at_once(lambda: [[stem(w) for w in words] for _ in range(200)])
    assert all(run == [alone] * 200 for run in runs), [r for r in runs if isinstance(r, Exception)]


def test_a_query_is_never_read_as_fts5_syntax(index, corpus):
    ingest(index, [corpus])
    for query in ['"', "NEAR(a b)", "AND OR NOT", "belgium*", "col:x", "(", "^brussels", "a - b"]:
        index.catalog.keyword_search(query, 5)  # must not raise
    assert keyword_sources(index, 'Brussels" OR "x')[0] == "belgium.md"


# --------------------------------------------------------------------------- in step
def test_keyword_index_follows_add_replace_remove_and_clear(index, corpus):
    ingest(index, [corpus])
    assert keyword_sources(index, "Atomium") == ["belgium.md"]
    assert_in_step(index.catalog)

    (corpus / "belgium.md").write_text("# Belgium\n\nBelgium is famous for chocolate from Ghent.\n")
    ingest(index, [corpus])
    assert keyword_sources(index, "Atomium") == []
    assert keyword_sources(index, "chocolate Ghent") == ["belgium.md"]
    assert_in_step(index.catalog, gone={"atomium", "waffl"})

    remove(index, "belgium.md")
    assert keyword_sources(index, "chocolate Ghent") == []
    assert keyword_sources(index, "lighthouse paraffin")[0] == "lighthouse.txt"
    assert_in_step(index.catalog, gone={"chocol", "ghent"})

    index.catalog.clear()
    assert keyword_sources(index, "lighthouse paraffin") == []
    assert index.catalog.term_stats(["lighthous"]) == (0, {"lighthous": 0})


def test_staged_chunks_are_not_searchable_until_their_document_commits(index):
    catalog = index.catalog
    text = "The zeppelin hangar at Friedrichshafen."
    catalog.stage_chunks([Chunk("d1-abc-0", "d1", 0, 0, len(text), None, text)])
    assert catalog.keyword_search("zeppelin", 5) == []
    assert catalog.term_stats(["zeppelin"]) == (0, {"zeppelin": 0})
    catalog.commit_document(Document("d1", "/x/z.txt", "z.txt", None, "abc", 1, 0.0, 1, 0.0))
    assert [c.chunk_id for c, _ in catalog.keyword_search("zeppelin", 5)] == ["d1-abc-0"]
    assert catalog.term_stats(["zeppelin"]) == (1, {"zeppelin": 1})


def test_doc_filter_is_applied_inside_the_keyword_search(index, corpus):
    ingest(index, [corpus])
    ids = {d.source: d.doc_id for d in index.catalog.documents()}
    # "France" is in every neighbour; only Spain's and Switzerland's chunks may come back
    assert set(keyword_sources(index, "France", 10)) >= {"belgium.md", "germany.html"}
    only = keyword_sources(index, "France", 10, [ids["spain.pdf"], ids["switzerland.docx"]])
    assert set(only) == {"spain.pdf", "switzerland.docx"}
    # n counts filtered results: a rare match in the filtered document still comes back
    assert keyword_sources(index, "France capital", 1, [ids["lighthouse.txt"]]) == []
    assert keyword_sources(index, "France keeper", 1, [ids["lighthouse.txt"]]) == ["lighthouse.txt"]
    assert keyword_sources(index, "France", 10, []) == []


def test_term_stats_counts_chunks_holding_each_term(index, corpus):
    ingest(index, [corpus])
    count, frequency = index.catalog.term_stats(terms("France Brussels keeper zebra"))
    assert count == len(index.catalog.chunks())
    assert frequency["brussel"] == 1 and frequency["keeper"] == 1 and frequency["zebra"] == 0
    assert frequency["franc"] >= 4  # Belgium, Germany, Spain, Switzerland
    assert_in_step(index.catalog)


def test_terms_in_most_chunks_are_left_out_unless_nothing_else_matches(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    texts = [f"common words in passage {i}" for i in range(8)] + ["common heron"]
    for i, text in enumerate(texts):
        catalog.stage_chunks([Chunk(f"d{i}-h-0", f"d{i}", 0, 0, len(text), None, text)])
        catalog.commit_document(Document(f"d{i}", f"/d{i}", f"d{i}", None, "h", 1, 0.0, 1, 0.0))
    # "common" is in every chunk: only "heron" is searched, so one chunk matches, not nine
    assert [c.chunk_id for c, _ in catalog.keyword_search("common heron", 10)] == ["d8-h-0"]
    # alone, the common term is still searched
    assert len(catalog.keyword_search("common", 10)) == 9
    catalog.close()


# --------------------------------------------------------------------------- ranking
CLEAR_CUT = {
    "capital of Belgium Brussels": "belgium.md",
    "Atomium World's Fair": "belgium.md",
    "Rhine river border": "germany.html",
    "tomato festival Bunol": "spain.pdf",
    "Swiss franc watchmaking": "switzerland.docx",
    "lighthouse paraffin burner": "lighthouse.txt",
    "trawler Marigold fishermen rescued": "lighthouse.txt",
    "Ministry of State Security WeChat": "seed.txt",
}


def test_top_hit_matches_the_in_memory_bm25_it_replaced(index, corpus):
    ingest(index, [corpus])
    reference = ReferenceBM25(index.catalog.chunks())
    sources = {d.doc_id: d.source for d in index.catalog.documents()}
    for query, source in CLEAR_CUT.items():
        ours = index.catalog.keyword_search(query, 3)
        theirs = reference.search(query, 3)
        assert sources[ours[0][0].doc_id] == source, query
        assert ours[0][0] == theirs[0], query
        assert [s for _, s in ours] == sorted((s for _, s in ours), reverse=True)


def test_hybrid_search_returns_keyword_hits_and_their_similarity(index, corpus):
    ingest(index, [corpus])
    retriever = Retriever(index)
    retriever.warm_up()
    hits = retriever.search("When did keeper Agnes Thorsby install the paraffin burner?", 4)
    assert hits[0].chunk.text.startswith("The Keeper's Log") or "Thorsby" in hits[0].chunk.text
    assert all(h.similarity is not None for h in hits)
    ids = {d.source: d.doc_id for d in index.catalog.documents()}
    only = retriever.search("paraffin burner", 4, [ids["belgium.md"]])
    assert {h.chunk.doc_id for h in only} == {ids["belgium.md"]}


# --------------------------------------------------------------------------- migration
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    title TEXT, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, chunks INTEGER NOT NULL,
    indexed_at REAL NOT NULL);
CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, n INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL);
CREATE INDEX chunks_doc ON chunks (doc_id);
CREATE TABLE staged_chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, n INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL);
"""


def _old_catalog(path, texts: dict[str, list[str]]) -> None:
    """A catalog as the version before the keyword index wrote it."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for doc_id, chunks in texts.items():
        db.execute("INSERT INTO documents VALUES (?, ?, ?, NULL, 'h', 1, 0, ?, 0)",
                   (doc_id, f"/old/{doc_id}.txt", f"{doc_id}.txt", len(chunks)))
        for n, text in enumerate(chunks):
            db.execute("INSERT INTO chunks VALUES (?, ?, ?, 0, ?, NULL, ?)",
                       (f"{doc_id}-h-{n}", doc_id, n, len(text), text))
    db.execute("""INSERT INTO meta VALUES ('generation', '{"n": 1}')""")
    db.commit()
    db.close()


def test_an_old_catalog_gets_its_keyword_index_when_opened(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    _old_catalog(path, {"light": [LIGHTHOUSE[:200], LIGHTHOUSE[200:]], "other": ["Rivers and bridges."]})
    catalog = Catalog(path)
    assert [c.chunk_id for c, _ in catalog.keyword_search("paraffin burner", 5)] == ["light-h-0"]
    assert_in_step(catalog)
    # and it stays in step afterwards, and is not filled again on the next open
    catalog.remove_document("other")
    catalog.close()
    again = Catalog(path)
    assert again.keyword_search("bridges", 5) == []
    assert_in_step(again, gone={"bridg"})
    again.close()


def test_a_catalog_changed_without_its_keyword_index_is_refilled(tmp_path):
    """A version without the keyword index wrote to the catalog: the next open catches up."""
    path = tmp_path / "catalog.sqlite3"
    catalog = Catalog(path)
    catalog.stage_chunks([Chunk("a-h-0", "a", 0, 0, 10, None, "Old harbour walls.")])
    catalog.commit_document(Document("a", "/a", "a", None, "h", 1, 0.0, 1, 0.0))
    catalog.close()
    db = sqlite3.connect(path)  # what the old code did: chunks and generation, no keyword rows
    db.execute("INSERT INTO chunks VALUES ('b-h-0', 'b', 0, 0, 10, NULL, 'New lighthouse lamp.')")
    db.execute("""INSERT OR REPLACE INTO meta VALUES ('generation', '{"n": 99}')""")
    db.commit()
    db.close()
    catalog = Catalog(path)
    assert [c.chunk_id for c, _ in catalog.keyword_search("lighthouse", 5)] == ["b-h-0"]
    assert_in_step(catalog)
    catalog.close()


def test_a_changed_analysis_refills_the_keyword_index(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite3"
    catalog = Catalog(path)
    catalog.stage_chunks([Chunk("a-h-0", "a", 0, 0, 10, None, "Swimming swans.")])
    catalog.commit_document(Document("a", "/a", "a", None, "h", 1, 0.0, 1, 0.0))
    catalog.close()
    import index.keywords as module  # where the keyword index analyses text

    monkeypatch.setattr(module, "analysis", lambda: {"version": -1, "stemmer": "none"})
    monkeypatch.setattr(module, "joined_terms", lambda text: text.lower().replace(".", ""))
    catalog = Catalog(path)  # refilled with the new analysis: unstemmed words now
    assert catalog.term_stats(["swimming", "swim"]) == (1, {"swim": 0, "swimming": 1})
    catalog.remove_document("a")  # deleting with the new analysis keeps it consistent
    assert catalog.term_stats(["swimming"]) == (0, {"swimming": 0})
    catalog.close()


# --------------------------------------------------------------------------- threads
def _version(n: int, doc_id: str) -> list[Chunk]:
    """Five chunks of one version of a document; every chunk says which version it is."""
    texts = [f"Version {n}: the ferry timetable for pier {i} changes in winter." for i in range(5)]
    return [Chunk(f"{doc_id}-v{n}-{i}", doc_id, i, 0, len(t), None, t) for i, t in enumerate(texts)]


def test_a_searching_thread_never_sees_a_half_swapped_document(index):
    """One thread searches in a loop while another swaps a document between two versions."""
    doc_id = "ferry"
    versions = {n: _version(n, doc_id) for n in (1, 2)}
    for chunks in versions.values():  # both versions' vectors stay in Chroma; the catalog decides
        index.store.upsert([c.chunk_id for c in chunks], index.embedder.embed([c.text for c in chunks]),
                           [doc_id] * len(chunks))
    other = [Chunk(f"quay-h-{i}", "quay", i, 0, 9, None, f"Quay wall section {i}.") for i in range(20)]
    index.catalog.stage_chunks(other)
    index.catalog.commit_document(Document("quay", "/quay", "quay", None, "h", 1, 0.0, 20, 0.0))

    def swap(n: int) -> None:
        index.catalog.stage_chunks(versions[n])
        index.catalog.commit_document(Document(doc_id, "/ferry", "ferry", None, f"v{n}", 1, 0.0, 5, 0.0))

    swap(1)
    retriever = Retriever(index)
    seen: list[set[str]] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        try:
            while not done.is_set():
                hits = retriever.search("ferry timetable pier winter", 10)
                seen.append({h.chunk.chunk_id.split("-")[1] for h in hits if h.chunk.doc_id == doc_id})
        except BaseException as exc:  # recorded, so the test fails with it
            failures.append(exc)

    reader = threading.Thread(target=search)
    reader.start()
    swaps = 0
    try:
        while (swaps < 300 or len(seen) < 150) and swaps < 20_000 and not failures:
            swaps += 1
            swap(2 if swaps % 2 else 1)
    finally:
        done.set()
        reader.join(60)
    assert not failures, failures
    assert len(seen) >= 150, f"the reader ran {len(seen)} searches during {swaps} swaps"
    mixed = [s for s in seen if len(s) != 1]
    assert not mixed, f"{len(mixed)} of {len(seen)} result sets mixed versions or lacked the document"
    assert {v for s in seen for v in s} == {"v1", "v2"}, "the swaps were never observed"


def test_each_thread_has_its_own_connection_and_close_closes_them_all(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    catalog.stage_chunks([Chunk("a-h-0", "a", 0, 0, 10, None, "Gull colony.")])
    catalog.commit_document(Document("a", "/a", "a", None, "h", 1, 0.0, 1, 0.0))
    results = []
    ready, release = threading.Event(), threading.Event()

    def reader() -> None:
        with catalog.snapshot():  # a reader holding a snapshot on its own connection
            results.append(catalog.keyword_search("gull", 1))
            ready.set()
            release.wait(30)
            results.append(catalog.keyword_search("gull", 1))

    thread = threading.Thread(target=reader)
    thread.start()
    ready.wait(30)
    catalog.remove_document("a")  # this thread commits while the reader's snapshot is open
    assert catalog.keyword_search("gull", 1) == []
    release.set()
    thread.join(30)
    assert len(results[0]) == 1 and results[1] == results[0], "the reader's snapshot changed"
    catalog.close()
    # with every connection closed, SQLite checkpoints and removes its write-ahead log
    assert not (tmp_path / "catalog.sqlite3-wal").exists()
    reopened = Catalog(tmp_path / "catalog.sqlite3")
    assert reopened.documents() == []
    reopened.close()

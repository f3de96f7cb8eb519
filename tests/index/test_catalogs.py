"""The two catalogs, SQLite and PostgreSQL, against each other and on what only a server has:
snapshots, ranking alike, the writer lock across connections, clear errors without the password,
another schema version, a dropped connection, and copying a folder index into PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from index.embedding.embedder import HashEmbedder
from index.errors import CatalogUnavailable, CatalogVersionMismatch, IndexBusy, SettingsMismatch
from index.index import Index
from index.ingest import ingest
from index.migration import copy_index
from tests.support.postgres import PASSWORD


@pytest.fixture
def index(tmp_path, catalog_url):
    idx = Index(tmp_path / "index", HashEmbedder(), catalog_url=catalog_url)
    yield idx
    idx.close()


def test_a_snapshot_sees_one_state_while_another_connection_commits(index, corpus, catalog_url):
    ingest(index, [corpus])
    catalog = index.catalog
    seen = {}
    with catalog.snapshot():
        before = {d.source for d in catalog.documents()}
        doomed = next(d for d in catalog.documents() if d.source.endswith(".md"))

        def remove():  # another thread: its own connection
            catalog.remove_document(doomed.doc_id)
            seen["generation"] = catalog.generation()

        worker = threading.Thread(target=remove)
        worker.start()
        worker.join(30)
        assert not worker.is_alive()
        assert {d.source for d in catalog.documents()} == before, "the snapshot still shows the document"
        assert catalog.chunk_ids(doomed.doc_id), "and its chunks"
    assert doomed.source not in {d.source for d in catalog.documents()}, "after the block: gone"
    assert catalog.generation() == seen["generation"]


QUESTIONS = ["Which platform did the Ministry of State Security join?", "Atomium Brussels",
             "What is the capital of Flanders?", "quarterly revenue table", "Ghent"]


def test_both_catalogs_rank_the_same_passages_first(tmp_path, corpus, postgres_url):
    """BM25 over the same analysed terms: the best passage is the same chunk on both."""
    lite = Index(tmp_path / "a", HashEmbedder())
    server = Index(tmp_path / "b", HashEmbedder(), catalog_url=postgres_url)
    ingest(lite, [corpus]), ingest(server, [corpus])
    for question in QUESTIONS:
        a, b = lite.catalog.keyword_search(question, 5), server.catalog.keyword_search(question, 5)
        assert [c.chunk_id for c, _ in a[:1]] == [c.chunk_id for c, _ in b[:1]], question
        assert [round(s, 6) for _, s in a] == [round(s, 6) for _, s in b], question  # ties may swap places
        only = [a[0][0].doc_id] if a else []
        assert {c.doc_id for c, _ in server.catalog.keyword_search(question, 5, only)} <= set(only)
    assert lite.catalog.term_stats(["atomium", "ghent", "zzz"]) == server.catalog.term_stats(["atomium", "ghent", "zzz"])
    lite.close(), server.close()


def test_the_writer_lock_holds_across_connections_and_frees_with_its_holder(index, catalog_url):
    held = index.lock()
    other = Index(index.dir, HashEmbedder(), catalog_url=catalog_url)  # as another process would
    with pytest.raises(IndexBusy, match="another process is writing to the index"):
        other.lock(timeout=0.3)
    got = []
    waiter = threading.Thread(target=lambda: got.append(other.lock(timeout=30)))  # waits for the first
    waiter.start()
    waiter.join(0.5)
    assert not got, "the second writer waits"
    held.release()
    waiter.join(30)
    assert got, "then holds the lock"
    got[0].release()
    other.close()


def test_a_wrong_password_is_a_clear_error_that_never_shows_it(tmp_path, postgres_cluster):
    url = postgres_cluster.url("postgres", password="not-" + PASSWORD)
    with pytest.raises(CatalogUnavailable, match="refused the login") as caught:
        Index(tmp_path / "x", HashEmbedder(), catalog_url=url)
    assert PASSWORD not in str(caught.value) and "***" in str(caught.value)


def test_an_unreachable_server_and_a_bad_url_are_clear_errors(tmp_path):
    from tests.support.servers import free_port

    with pytest.raises(CatalogUnavailable, match="does not answer.*start PostgreSQL") as caught:
        Index(tmp_path / "x", HashEmbedder(), catalog_url=f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/db")
    assert PASSWORD not in str(caught.value)
    with pytest.raises(CatalogUnavailable, match="not a PostgreSQL database URL"):
        Index(tmp_path / "x", HashEmbedder(), catalog_url="mysql://u@h/db")


def test_a_database_of_another_schema_version_is_refused(tmp_path, postgres_url):
    first = Index(tmp_path / "x", HashEmbedder(), catalog_url=postgres_url)
    first.catalog._db.execute("UPDATE doc_assistant.info SET value = '99' WHERE key = 'schema_version'")
    first.close()
    with pytest.raises(CatalogVersionMismatch, match="schema version 99.*Run the same version on every server"):
        Index(tmp_path / "x", HashEmbedder(), catalog_url=postgres_url)


def test_a_dropped_connection_is_reopened_between_statements_and_a_clear_error_inside_one(
        tmp_path, corpus, postgres_url):
    index = Index(tmp_path / "index", HashEmbedder(), catalog_url=postgres_url)
    ingest(index, [corpus])
    killer = Index(index.dir, HashEmbedder(), catalog_url=postgres_url)

    def drop_connection():
        pid = index.catalog._db.conn.info.backend_pid
        killer.catalog._db.execute("SELECT pg_terminate_backend(?)", (pid,))

    drop_connection()
    assert index.catalog.documents(), "between statements (a server restart): sent again on a new connection"
    with pytest.raises(CatalogUnavailable, match="lost the connection.*run the command again") as caught:
        with index.catalog.snapshot():
            index.catalog.documents()
            drop_connection()
            index.catalog.documents()
    assert PASSWORD not in str(caught.value)
    assert index.catalog.documents(), "the next call opens a new connection"
    killer.close(), index.close()


def test_a_writer_that_lost_its_lock_stops_before_writing(tmp_path, corpus, postgres_url):
    index = Index(tmp_path / "index", HashEmbedder(), catalog_url=postgres_url)
    killer = Index(index.dir, HashEmbedder(), catalog_url=postgres_url)
    lock = index.lock()
    killer.catalog._db.execute("SELECT pg_terminate_backend(?)", (lock._db.conn.info.backend_pid,))
    with pytest.raises(CatalogUnavailable, match="lost the writer lock"):
        index.catalog.set_meta("x", {"y": 1})
    lock.release()
    killer.lock(timeout=5).release()  # the server released it with the connection
    killer.close(), index.close()


def test_processes_that_would_keep_the_vectors_elsewhere_are_refused(tmp_path, postgres_url):
    Index(tmp_path / "here", HashEmbedder(), catalog_url=postgres_url).close()  # Chroma files in "here"
    with pytest.raises(SettingsMismatch, match="vectors of the index .* are kept in Chroma files at .*here"):
        Index(tmp_path / "elsewhere", HashEmbedder(), catalog_url=postgres_url)


def test_no_password_in_messages_about_urls_libpq_cannot_read(tmp_path):
    for url in (f"postgresql://u:50%-{PASSWORD}@127.0.0.1:1/db", f"postgresql://u@127.0.0.1:1/db?password={PASSWORD}"):
        with pytest.raises(CatalogUnavailable) as caught:
            Index(tmp_path / "x", HashEmbedder(), catalog_url=url)
        assert PASSWORD not in str(caught.value), str(caught.value)


def test_a_folder_index_is_copied_into_postgresql_whole_and_checked(tmp_path, corpus, postgres_url):
    source = Index(tmp_path / "folder", HashEmbedder())
    ingest(source, [corpus])
    target = Index(tmp_path / "target", HashEmbedder(), catalog_url=postgres_url)
    report = copy_index(source, target)
    assert sorted(report.copied) == sorted(d.source for d in source.catalog.documents())
    assert target.catalog.chunks() == source.catalog.chunks()
    assert target.store.ids() == source.store.ids()
    again = copy_index(source, target)  # re-runnable: nothing left to copy
    assert again.copied == [] and len(again.present) == len(report.copied)
    question = "Which platform did the Ministry of State Security join?"
    assert target.catalog.keyword_search(question, 3) == source.catalog.keyword_search(question, 3)
    vector = HashEmbedder().embed([question])[0]
    assert target.store.query(vector, 3) == source.store.query(vector, 3)
    source.close(), target.close()

"""Collections under one data folder: names, layout, asking one or several, old index folders."""

from __future__ import annotations

import pytest

from assistant import Assistant, Settings
from assistant.errors import CollectionError, SettingError
from assistant.pipeline.merging import merge_answers
from assistant.types import Answer, Citation
from index.collections import check_name
from index.embedding.embedder import HashEmbedder


def _bot(tmp_path, **settings) -> Assistant:
    return Assistant(Settings.from_env(env={}, backend="none", **settings), embedder=HashEmbedder())


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "", "a" * 65, "x\\y", "a..b", "/abs"])
def test_names_that_could_leave_the_data_folder_are_refused(tmp_path, name):
    with pytest.raises(CollectionError, match="cannot name a collection"):
        check_name(name)
    with pytest.raises(SettingError, match="cannot name a collection"):
        Settings.from_env(env={}, data_dir=tmp_path, collection=name)
    assert not any(tmp_path.iterdir()), "nothing was made"


def test_layout_keeps_an_old_index_folder_as_the_default_collection(tmp_path):
    old = Settings.from_env(env={}, index_dir=tmp_path / "idx")
    assert old.index_dir == tmp_path / "idx" and old.data == tmp_path / "idx"
    assert old.for_collection("papers").index_dir == tmp_path / "idx" / "collections" / "papers"
    assert old.for_collection("papers").for_collection("default").index_dir == tmp_path / "idx"
    fresh = Settings.from_env(env={"ASSISTANT_DATA": str(tmp_path / "data")}, collection="notes")
    assert fresh.index_dir == tmp_path / "data" / "collections" / "notes"
    assert fresh.for_collection("default").index_dir == tmp_path / "data" / "index"


def test_create_rename_delete(tmp_path, catalog_url):
    bot = _bot(tmp_path, index_dir=tmp_path / "idx", catalog_url=catalog_url)
    assert bot.collections() == ["default"]
    bot.create_collection("papers")
    bot.create_collection("manuals")
    assert bot.collections() == ["default", "manuals", "papers"]
    with pytest.raises(CollectionError, match="exists already"):
        bot.create_collection("papers")
    bot.rename_collection("papers", "articles")
    assert bot.collections() == ["default", "articles", "manuals"]
    with pytest.raises(CollectionError, match="cannot be renamed"):
        bot.rename_collection("default", "x")
    with pytest.raises(CollectionError, match="cannot be deleted"):
        bot.delete_collection("default")
    with pytest.raises(CollectionError, match="no collection 'nope'.*default, articles, manuals"):
        bot.delete_collection("nope")
    bot.delete_collection("manuals")
    assert bot.collections() == ["default", "articles"]
    assert not (tmp_path / "idx" / "collections" / "manuals").exists()


def test_an_unknown_collection_is_a_clear_error_and_makes_nothing(tmp_path, catalog_url):
    settings = Settings.from_env(env={}, backend="none", index_dir=tmp_path / "idx", collection="ghost",
                                 catalog_url=catalog_url)
    with pytest.raises(CollectionError, match="no collection 'ghost'"):
        Assistant(settings, embedder=HashEmbedder(), create=False)
    assert not (tmp_path / "idx" / "collections" / "ghost").exists()
    with pytest.raises(CollectionError, match="no collection 'ghost'"):
        _bot(tmp_path, index_dir=tmp_path / "idx", catalog_url=catalog_url).collection("ghost")


def test_each_collection_has_its_own_documents_and_several_are_asked_at_once(tmp_path, catalog_url):
    bot = _bot(tmp_path, index_dir=tmp_path / "idx", catalog_url=catalog_url)
    herons, otters = tmp_path / "herons", tmp_path / "otters"
    herons.mkdir(), otters.mkdir()
    (herons / "herons.md").write_text("# Herons\n\nGrey herons nest in tall colonies called heronries.\n")
    (otters / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping so they do not drift.\n")
    bot.ingest([herons])
    bot.create_collection("animals")
    bot.collection("animals").ingest([otters])
    assert [d.source for d in bot.documents()] == ["herons.md"]
    assert [d.source for d in bot.collection("animals").documents()] == ["otters.md"]
    one = bot.collection("animals").ask("Why do sea otters hold hands while sleeping?", mode="extractive")
    assert {c.collection for c in one.citations} == {"animals"}
    both = bot.chat("Why do sea otters hold hands while sleeping?", None, collections=["default", "animals"],
                    mode="extractive")
    assert not both.abstained and "drift" in both.answer
    assert {(c.collection, c.source) for c in both.cited} == {("animals", "otters.md")}
    assert [c.n for c in both.citations] == list(range(1, len(both.citations) + 1))


def _cite(n, source, score, cited=True):
    return Citation(n, cited, "d", f"c{n}", source, None, None, 0, 4, "text", [[0, 4]], score)


def test_merged_answers_renumber_markers_and_name_each_collection():
    a = Answer("q", "From a [1].", False, "extractive", "x", [_cite(1, "a.md", 0.01), _cite(2, "a2.md", 0.0, False)])
    b = Answer("q", "From b [1] and [2].", False, "extractive", "x", [_cite(1, "b.md", 0.03), _cite(2, "b2.md", 0.02)])
    none = Answer("q", "The documents do not say.", True, "extractive", "x", [_cite(1, "n.md", 0.0, False)])
    merged = merge_answers("q", [("alpha", a), ("beta", b), ("gamma", none)])
    assert merged.answer == "beta: From b [1] and [2].\n\nalpha: From a [3]."  # best-scored first
    assert [(c.n, c.source, c.cited) for c in merged.citations] == [
        (1, "b.md", True), (2, "b2.md", True), (3, "a.md", True), (4, "a2.md", False), (5, "n.md", False)]
    refused = merge_answers("q", [("alpha", none), ("beta", none)])
    assert refused.abstained and refused.answer == "The documents do not say."
    assert not any(c.cited for c in refused.citations)

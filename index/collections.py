"""Named collections under one data folder: each its own index folder (documents, catalog, vectors).

    DATA/index               the ``default`` collection (where a single index always lived)
    DATA/collections/NAME    every other collection
    DATA/conversations.sqlite3   the conversations, which may span collections (assistant/)

An index folder opened with ``--index DIR`` is the data folder's ``default`` collection: its other
collections live under ``DIR/collections/``. Names are checked before they touch a path, so a name
can never reach outside the data folder (docs/ui.md).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from index.errors import CollectionError

DEFAULT = "default"
SUBFOLDER = "collections"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CATALOG = "catalog.sqlite3"  # a folder holding this is an index (index.index.Index)


def check_name(name: str) -> str:
    """``name`` when it can name a collection; raises CollectionError saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise CollectionError(
            f"{name!r} cannot name a collection: use 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (no '/', no '..')")
    return name


def collection_dir(data_dir: Path, name: str, default_dir: Path | None = None) -> Path:
    """The index folder of collection ``name`` (``default_dir`` or DATA/index for ``default``)."""
    check_name(name)
    if name == DEFAULT:
        return Path(default_dir) if default_dir is not None else Path(data_dir) / "index"
    return Path(data_dir) / SUBFOLDER / name


class Collections:
    """The collections of one data folder: list, create, rename, delete.

    Args:
        data_dir: the data folder.
        default_dir: the ``default`` collection's folder (DATA/index unless opened with ``--index``).
    """

    def __init__(self, data_dir: Path, default_dir: Path | None = None):
        self.data_dir = Path(data_dir)
        self.default_dir = Path(default_dir) if default_dir is not None else self.data_dir / "index"

    def path(self, name: str) -> Path:
        return collection_dir(self.data_dir, name, self.default_dir)

    def names(self) -> list[str]:
        """``default`` first, then every other collection by name."""
        folder = self.data_dir / SUBFOLDER
        others = sorted(p.name for p in folder.iterdir()
                        if p.is_dir() and NAME_PATTERN.fullmatch(p.name)) if folder.is_dir() else []
        return [DEFAULT] + [n for n in others if n != DEFAULT]

    def exists(self, name: str) -> bool:
        return name == DEFAULT or self.path(name).is_dir()

    def require(self, name: str) -> Path:
        """The folder of an existing collection; raises CollectionError naming the known ones."""
        if not self.exists(name):
            raise CollectionError(f"no collection {name!r}; the collections are: {', '.join(self.names())} "
                                  f"(create one with `assistant collections create {name}`)")
        return self.path(name)

    def create(self, name: str) -> Path:
        """Make an empty collection; raises CollectionError when it exists."""
        path = self.path(name)
        if name == DEFAULT or path.exists():
            raise CollectionError(f"collection {name!r} exists already")
        path.mkdir(parents=True)
        return path

    def rename(self, old: str, new: str) -> Path:
        """Rename a collection (not ``default``); its documents and vectors move with it.

        A collection on a Chroma server keeps its vectors under its folder's old path, so it must
        be ingested again after a rename (the caller says so)."""
        source, target = self.require(old), self.path(new)
        if DEFAULT in (old, new):
            raise CollectionError("the default collection cannot be renamed, nor a collection renamed to it")
        if target.exists():
            raise CollectionError(f"collection {new!r} exists already")
        os.replace(source, target)
        return target

    def delete(self, name: str) -> None:
        """Delete a collection (not ``default``) with everything indexed in it (its files on disk
        are untouched). Moved aside first, so a crash never leaves half a collection listed."""
        path = self.require(name)
        if name == DEFAULT:
            raise CollectionError("the default collection cannot be deleted; remove its documents instead")
        trash = self.data_dir / SUBFOLDER / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

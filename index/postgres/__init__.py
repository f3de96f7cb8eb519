"""The catalog in PostgreSQL, for an index shared by processes on several machines.

``--catalog-url postgresql://USER@HOST/DB`` puts each collection's catalog (documents, chunks,
sections, the keyword index) in one schema of that database, the collections' names in a
registry beside them, and the one-writer rule in an advisory lock (docs/deploy.md). The SQLite
catalog stays the default; both share ``index.catalog.Catalog``'s code.

    connection.py   the URL (shown without its password), connecting, and the SQL both dialects share
    schema.py       the database's own tables, the schema version, each collection's tables
    keywords.py     the keyword index: postings and term statistics, BM25 scored in SQL
    catalog.py      PostgresCatalog and its advisory writer lock
    collections.py  the collections, named in the registry
"""

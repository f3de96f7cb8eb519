"""Tests of index/: reading, chunking, embedding, the catalog and keyword index, ingest and removal."""

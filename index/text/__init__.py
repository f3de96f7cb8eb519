"""Pure text functions (sentences, chunks, search terms): no I/O, nothing else of the project."""

"""Documents in: reading, chunking, storing and syncing a folder into the index."""

"""Migration into Qdrant: the pure plan, the run, and the embedded-store reader."""

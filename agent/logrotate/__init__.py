"""Log rotation: the pure plan, applying it, archive file operations, writers and disk usage."""

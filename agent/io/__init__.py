"""The side-effect chokepoints: subprocesses, HTTP clients, atomic writes, locks, logging setup."""

"""ragops: a systemd-native ops agent for a self-hosted RAG stack."""

__version__ = "0.1.0"

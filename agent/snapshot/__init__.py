"""Qdrant snapshots: manifests, retention, the jobs, storage targets and transfer progress."""

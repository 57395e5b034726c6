from tests.integration.snapshot_fixtures import qdrant, seaweed

__all__ = ["qdrant", "seaweed"]

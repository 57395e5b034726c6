"""Click commands, one module each, loaded lazily by ``agent.cli``."""

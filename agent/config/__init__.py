"""Configuration: the pydantic-settings models, reading the file, and the daemon's plain view."""

"""Pings: events about services and jobs, sent to webhooks and Healthchecks-style checks."""

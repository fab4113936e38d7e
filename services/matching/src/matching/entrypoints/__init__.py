"""Entry points of the matching service: HTTP API, event consumer, operator CLI."""

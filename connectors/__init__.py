"""Storage connectors."""

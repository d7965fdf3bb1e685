"""Streaming core: producers, consumer groups, lazy proxies, replay from offsets."""

"""Stores: a named connector plus serializers, checksums and metrics; store configs in a compacted topic."""

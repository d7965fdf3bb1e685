"""Async processing pipelines over streams, with bounded buffers, error policies and Dask dispatch."""

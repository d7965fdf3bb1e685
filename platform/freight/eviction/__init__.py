"""Offset-watermark eviction: delete objects every retaining group has committed past."""

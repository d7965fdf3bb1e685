"""Offset-driven stream buffers: chunk policies, sliding windows, exact rebuild after a crash."""

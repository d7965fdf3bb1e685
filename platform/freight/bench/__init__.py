"""Benchmarks. Each module measures one capability against the baseline its issue names, in the same run,
and registers a `freight bench <name>` command. Timings are printed and written to JSON, never asserted."""

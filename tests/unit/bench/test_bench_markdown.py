"""The benchmark table claims a ratio (bold) only for a full run whose min-max ranges do not overlap."""

from __future__ import annotations

from typing import Any

from freight.bench.suite import markdown


def _doc(mode: str, freight: tuple[float, float, float]) -> dict[str, Any]:
    def row(
        subject: str, fig: tuple[float, float, float], base: str | None, ratio: float | None
    ) -> dict[str, Any]:
        med, lo, hi = fig
        return {"subject": subject, "median": med, "minimum": lo, "maximum": hi, "unit": "MB/s",
                "baseline": base, "ratio": ratio}  # fmt: skip

    machine = {
        **{"cpus": 2, "memory_gib": 24, "python": "3.11", "confluent_kafka": "2", "librdkafka": "2"},
        **{"proxystore": "1.1.0", "load_average_start": [0.5], "load_average_end": [0.7], "git_commit": "x"},
    }
    results = [row("raw", (100.0, 90.0, 110.0), None, None), row("freight", freight, "raw", freight[0] / 100)]
    return {
        "command": "freight bench" + ("" if mode == "full" else f" --{mode}"),
        "options": {"mode": mode, "repetitions": 5},
        "machine": machine,
        "started_at": "now",
        "scenarios": {"bulk": {"title": "bulk", "setup": "s", "results": results}},
    }


def test_full_run_bolds_only_ratios_whose_ranges_do_not_overlap() -> None:
    assert "**2.00x**" in markdown(_doc("full", (200.0, 190.0, 210.0)))
    overlapping = markdown(_doc("full", (105.0, 95.0, 130.0)))
    assert "1.05x" in overlapping and "**1.05x**" not in overlapping
    assert not markdown(_doc("full", (200.0, 190.0, 210.0))).startswith("**Smoke")


def test_smoke_run_is_marked_and_claims_nothing() -> None:
    for mode in ("quick", "tiny"):
        table = markdown(_doc(mode, (200.0, 190.0, 210.0)))
        assert table.startswith("**Smoke run") and "2.00x" in table and "**2.00x**" not in table


def test_table_says_which_event_codec_ran() -> None:
    """Per-event figures differ with the compiled codec (`make native`): the header says which one ran."""
    doc = _doc("full", (200.0, 190.0, 210.0))
    assert "event codec pure Python" in markdown(doc)  # results written before the field existed
    doc["machine"]["event_codec"] = "compiled"
    assert "event codec compiled" in markdown(doc)


def test_machine_info_records_the_event_codec() -> None:
    from freight.bench.suite import machine_info
    from freight.schemas import fastcodec

    expected = "compiled" if fastcodec.NATIVE is not None else "pure Python"
    assert machine_info()["event_codec"] == expected


def test_loaded_run_says_so_and_its_command_repeats_it() -> None:
    """A run under `--background-load` says so in its header; its command line repeats the run."""
    from freight.bench.suite import SuiteConfig, command_line

    doc = _doc("full", (200.0, 190.0, 210.0))
    assert "busy background" not in markdown(doc)
    doc["options"]["background_load"] = 1
    assert "with 1 busy background process running through the whole run" in markdown(doc)

    cfg = SuiteConfig.for_mode("full", 5)
    assert command_line(cfg) == "freight bench -r 5"
    cfg.only, cfg.background_load = ["small", "bulk"], 1
    assert command_line(cfg) == "freight bench -r 5 --only small --only bulk --background-load 1"
    assert command_line(SuiteConfig.for_mode("quick")) == "freight bench --quick"

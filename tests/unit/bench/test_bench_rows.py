"""The one benchmark row builder: `Measurement.of` (median, min-max, repetitions, figures kept)."""

from __future__ import annotations

import pytest

from freight.bench._common import Measurement, with_ratios


def test_row_has_median_range_and_figures() -> None:
    row = Measurement.of("s", "freight", "MB/s", [3.0, 1.0, 2.0, 10.0, 4.0], "raw", size=1)
    assert (row.median, row.minimum, row.maximum, row.repetitions) == (3.0, 1.0, 10.0, 5)
    assert row.extra == {"values": [3.0, 1.0, 2.0, 10.0, 4.0], "size": 1}
    base = Measurement.of("s", "raw", "MB/s", [6.0, 6.0, 6.0, 6.0, 6.0])
    with_ratios([base, row])
    assert row.ratio == pytest.approx(0.5)


def test_row_without_figures_is_an_error() -> None:
    with pytest.raises(ValueError, match="no figures for 'x'"):
        Measurement.of("s", "x", "ms", [])

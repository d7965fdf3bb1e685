"""Draw docs/architecture.png, the picture in the README: `python docs/architecture.py`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

BOXES = {
    "producer": (0.3, 3.2, "producer process\nStreamProducer", "#dbeafe"),
    "store": (4.2, 4.6, "store\nfile / S3 / tensor (shm, NIXL)", "#fef3c7"),
    "kafka": (4.2, 1.8, "Kafka topic\nAvro ObjectEvent per object\n(key = stream id)", "#dcfce7"),
    "registry": (4.2, 0.2, "schema registry\n(_schemas topic)", "#f3e8ff"),
    "consumer": (8.2, 3.2, "consumer group\nStreamConsumer -> Proxy", "#dbeafe"),
    "worker": (8.2, 0.9, "worker (Dask, pipeline)\nresolves the proxy", "#e0f2fe"),
    "evictor": (8.2, 5.3, "evictor\ndeletes once every group\ncommitted past", "#fee2e2"),
}
W, H = 3.0, 1.1
ARROWS = [
    ("producer", "store", "1. put bytes", 0.5),
    ("producer", "kafka", "2. produce event", 0.5),
    ("producer", "registry", "schema id (cached)", 0.5),
    ("kafka", "consumer", "3. events, offsets", 0.3),
    ("consumer", "worker", "pickled proxy (< 1 KiB)", 0.5),
    ("store", "worker", "4. bytes on resolve", 0.75),
    ("kafka", "evictor", "committed offsets", 0.3),
    ("evictor", "store", "evict", 0.5),
]


def centre(name: str) -> tuple[float, float]:
    x, y, _text, _colour = BOXES[name]
    return x + W / 2, y + H / 2


def main() -> None:
    fig, ax = plt.subplots(figsize=(11.5, 6.4))
    for x, y, text, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), W, H, boxstyle="round,pad=0.05", fc=colour, ec="#334155"))
        ax.text(x + W / 2, y + H / 2, text, ha="center", va="center", fontsize=9.5)
    for a, b, label, at in ARROWS:
        (x1, y1), (x2, y2) = centre(a), centre(b)
        ax.add_patch(
            FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=14, color="#475569",
                            shrinkA=38, shrinkB=38, connectionstyle="arc3,rad=0.06")
        )  # fmt: skip
        x, y = x1 + (x2 - x1) * at, y1 + (y2 - y1) * at + 0.12
        box = {"fc": "white", "ec": "none", "pad": 0.5}
        ax.text(x, y, label, ha="center", fontsize=8, color="#1e293b", bbox=box)
    ax.set_xlim(0, 11.6)
    ax.set_ylim(-0.1, 6.6)
    ax.axis("off")
    ax.set_title("Freight: small Avro events through Kafka, bulk bytes through a store", fontsize=12)
    out = Path(__file__).with_name("architecture.png")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

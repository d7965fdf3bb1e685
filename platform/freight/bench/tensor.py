"""`freight bench tensor`: one tensor handed to another process by each transport, in one run, in GB/s.

The producer (this process) puts a float32 tensor, allocated in shared memory with `empty()`, into a tensor
store; a consumer process rebuilds the store from its config and `get`s it, by:

* shared memory: the consumer maps the producer's segment (nothing is copied; the row "+ first read" adds
  touching every byte once, since mapped pages are faulted in on first use);
* the transfer engine (NIXL, the `rdma` extra; `transport="rdma"`): a one-sided READ into memory the consumer
  registered. On this kind of machine UCX moves the bytes by cross-memory attach (same host) or TCP; the
  row with UCX_TLS=tcp restricts the consumer to TCP, as between hosts without RDMA hardware;
* the socket fallback (`transport="tcp"`): the owner streams the bytes over its control socket. This is the
  baseline: ratios are GB/s against it at the same size.

Each figure is the median of `--repetitions` gets (at least 5) with min and max, after one untimed warm-up
get per transport (the engine's first read sets up its connection: reported as `warmup_ms`). The load average
is recorded before and after each size. CUDA rows are added where a device exists; none was measured here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

MiB = 1 << 20
SOCKET = "socket (TCP) fallback"


def register(app: typer.Typer) -> None:
    """Add `freight bench tensor` to the bench group."""
    app.command("tensor")(tensor)


def _gbps(nbytes: int, seconds: list[float]) -> list[float]:
    return [nbytes / s / 1e9 for s in seconds if s > 0]


def _row(size_mib: float, subject: str, nbytes: int, seconds: list[float], **extra: Any) -> Any:
    from freight.bench._common import Measurement

    rates = sorted(_gbps(nbytes, seconds))
    ms = sorted(1000 * s for s in seconds)
    return Measurement(
        scenario=f"tensor {size_mib:g} MiB",
        subject=subject,
        unit="GB/s",
        median=statistics.median(rates),
        minimum=rates[0],
        maximum=rates[-1],
        repetitions=len(rates),
        baseline=None if subject == SOCKET else SOCKET,
        extra={"ms_median": statistics.median(ms), "ms_min": ms[0], "ms_max": ms[-1], **extra},
    )


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(sizes_mib: list[float], repetitions: int) -> dict[str, Any]:
    """Measure every transport at every size; the JSON document `--out` writes."""
    import torch

    from freight.bench._common import machine, with_ratios
    from freight.bench._stores_tensor import _Consumer
    from freight.connectors import TensorConnector, transfer
    from freight.stores import Store

    engine = transfer.available()
    consumers = {"plain": _Consumer()}
    if engine:
        consumers["tcp-only"] = _Consumer({"UCX_TLS": "tcp"})
    rows: list[Any] = []
    loads: dict[str, Any] = {}
    not_run: list[str] = []
    if not engine:
        not_run.append("transfer engine: the rdma extra (NIXL) is not installed")
    if not torch.cuda.is_available():
        not_run.append("CUDA IPC and the engine's GPU memory path (GPUDirect): no CUDA device")
    not_run.append("RDMA verbs (InfiniBand / RoCE): no RDMA hardware; UCX used cma and tcp")
    try:
        for size in sizes_mib:
            nbytes = int(size * MiB) // 4 * 4
            conn = TensorConnector(f"bench-{uuid.uuid4().hex[:8]}")
            try:
                store = Store("bench-tensors", conn)
                shared = conn.empty((nbytes // 4,), torch.float32)
                shared.copy_(torch.rand(nbytes // 4, dtype=torch.float32))
                store.put(shared, key="t")
                cfg = store.config()

                def variant(transport: str, cfg: Any = cfg) -> Any:
                    return cfg.model_copy(update={"options": {**cfg.options, "transport": transport}})

                before = _load()
                plain = consumers["plain"]
                tcp = plain.handoff(variant("tcp"), "t", repetitions, warmup=1)
                rows.append(_row(size, SOCKET, nbytes, tcp["get_s"], warmup_ms=1000 * tcp["warmup_s"][0]))
                shm = plain.handoff(cfg, "t", repetitions, warmup=1)
                rows.append(_row(size, "shared memory (mapping)", nbytes, shm["get_s"]))
                touched = [g + r for g, r in zip(shm["get_s"], shm["read_s"], strict=True)]
                rows.append(_row(size, "shared memory + first read", nbytes, touched))
                if engine:
                    for name, label in (("plain", "UCX default: cma+tcp"), ("tcp-only", "UCX_TLS=tcp")):
                        got = consumers[name].handoff(variant("rdma"), "t", repetitions, warmup=1)
                        rows.append(
                            _row(
                                size,
                                f"transfer engine (NIXL, {label})",
                                nbytes,
                                got["get_s"],
                                warmup_ms=1000 * got["warmup_s"][0],
                            )
                        )
                if torch.cuda.is_available():
                    gpu = shared.to("cuda")
                    torch.cuda.synchronize()
                    store.put(gpu, key="gpu")
                    ipc = plain.handoff(cfg, "gpu", repetitions, warmup=1)
                    rows.append(
                        _row(size, "CUDA IPC (cuda tensor)", nbytes, ipc["get_s"], device=ipc["device"])
                    )
                    if engine:
                        got = plain.handoff(variant("rdma"), "gpu", repetitions, warmup=1)
                        rows.append(
                            _row(
                                size,
                                "transfer engine (cuda tensor)",
                                nbytes,
                                got["get_s"],
                                device=got["device"],
                            )
                        )
                loads[f"{size:g} MiB"] = {"before": before, "after": _load()}
            finally:
                conn.shutdown()
    finally:
        for consumer in consumers.values():
            consumer.close()
    with_ratios(rows, higher_is_better=True)
    return {
        "title": "freight bench tensor",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repetitions": repetitions,
        "load_average": loads,
        "not_run": not_run,
        "results": [asdict(r) for r in rows],
    }


def markdown(doc: dict[str, Any]) -> str:
    """The document as a Markdown page (docs/bench/tensor.md)."""
    lines = [
        "# freight bench tensor",
        "",
        f"Generated by `freight bench tensor` at {doc['when']} on {doc['machine']['cpus']} CPUs "
        f"({doc['machine']['platform']}); median of {doc['repetitions']} gets per row after one warm-up, "
        "min-max in brackets; ratio = GB/s against the socket fallback at the same size.",
        "",
        "| size | transport | GB/s median [min-max] | ms median | ratio vs socket |",
        "|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        ratio = "baseline" if r["baseline"] is None else f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        lines.append(
            f"| {r['scenario'].removeprefix('tensor ')} | {r['subject']} | {r['median']:.2f} "
            f"[{r['minimum']:.2f}-{r['maximum']:.2f}] | {r['extra']['ms_median']:.2f} | {ratio} |"
        )
    lines += ["", "Load average (1, 5, 15 min) before and after each size:", ""]
    lines += [f"- {size}: {v['before']} -> {v['after']}" for size, v in doc["load_average"].items()]
    lines += ["", "Not run here:", ""] + [f"- {reason}" for reason in doc["not_run"]]
    return "\n".join(lines) + "\n"


def tensor(
    sizes: Annotated[
        list[float] | None, typer.Option("--size", help="Tensor size in MiB (repeat; default 1, 64, 1024).")
    ] = None,
    repetitions: Annotated[int, typer.Option("--repetitions", "-r", min=1, help="Gets per row.")] = 7,
    old_n: Annotated[int | None, typer.Option("-n", hidden=True, min=1, help="Old name of -r.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="1 and 4 MiB, 3 repetitions (a smoke run).")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write tensor.json and tensor.md into this directory.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Shared memory, the transfer engine (NIXL) and the socket fallback, 1 MiB to 1 GiB, in GB/s."""
    repetitions = old_n if old_n is not None else repetitions  # -n: the old short name
    from freight.bench._common import Measurement, report
    from freight.errors import ConfigError

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError("freight bench tensor needs torch: pip install 'freight[torch]'") from None
    chosen = [1.0, 4.0] if quick else list(sizes or [1.0, 64.0, 1024.0])
    if any(s <= 0 for s in chosen):
        raise ConfigError(f"--size must be positive MiB, got {chosen}")
    doc = run(chosen, 3 if quick else repetitions)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "tensor.json").write_text(json.dumps(doc, indent=2))
        (out / "tensor.md").write_text(markdown(doc))
    if json_:
        print(json.dumps(doc, indent=2))
        return
    rows = [Measurement(**r) for r in doc["results"]]
    report("freight bench tensor (GB/s; ratio vs the socket fallback)", rows)
    for size, load in doc["load_average"].items():
        print(f"load average {size}: {load['before']} -> {load['after']}")
    for reason in doc["not_run"]:
        print(f"not run: {reason}")

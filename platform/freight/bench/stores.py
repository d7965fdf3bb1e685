"""`freight bench stores`: the storage side measured on its own, each figure against its baseline in one run.

* file: Store put+get of numpy arrays vs raw `ndarray.tofile` + `numpy.fromfile` in the same directory (and
  a memory-mapped get, which copies nothing);
* s3: S3 store put/get MiB/s vs s3fs's own `pipe_file` / `cat_file` of the same bytes (moto by default);
* tensor: cross-process handoff of a large tensor (shared memory on CPU, CUDA IPC on GPU) vs the byte
  transfer a reader on another host would get.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

SCENARIOS = ("file", "s3", "tensor")


def register(app: typer.Typer) -> None:
    """Add `freight bench stores` to the bench group."""
    app.command("stores")(stores)


def stores(
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes and few repetitions (a smoke run).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON results to this file.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help=f"Run only these scenarios: {', '.join(SCENARIOS)}.")
    ] = None,
    repetitions: Annotated[
        int | None, typer.Option("--repetitions", "-r", min=1, help="Repetitions.")
    ] = None,
    old_n: Annotated[int | None, typer.Option("-n", hidden=True, min=1, help="Old name of -r.")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Directory for the file scenario (default: a temp dir).")
    ] = None,
    tensor_mib: Annotated[int | None, typer.Option("--tensor-mib", min=1, help="Tensor size in MiB.")] = None,
) -> None:
    """File, S3 and tensor stores against raw numpy files, s3fs, and byte transfer."""
    repetitions = old_n if old_n is not None else repetitions  # -n: the old short name of -r
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from freight.bench._common import Measurement, report, with_ratios
    from freight.errors import ConfigError

    chosen = list(only or SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        raise ConfigError(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    reps = repetitions or (2 if quick else 7)
    file_sizes = [1, 4] if quick else [1, 16, 256]
    s3_sizes = [1] if quick else [1, 16, 64]
    tensor_size = tensor_mib or (16 if quick else 1024)

    rows: list[Measurement] = []
    steps = {
        "file": reps * len(file_sizes),
        "s3": reps * len(s3_sizes),
        "tensor": 2,
    }
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True, disable=json_
    ) as progress:
        if "file" in chosen:
            from freight.bench._stores_file import bench_file

            task = progress.add_task("file store vs tofile/fromfile", total=steps["file"])
            with tempfile.TemporaryDirectory(prefix="freight-bench-file-", dir=directory) as tmp:
                rows += with_ratios(bench_file(Path(tmp), file_sizes, reps, lambda: progress.advance(task)))
        if "s3" in chosen:
            from freight.bench._stores_s3 import bench_s3

            task = progress.add_task("S3 store vs s3fs pipe/cat", total=steps["s3"])
            rows += with_ratios(bench_s3(s3_sizes, reps, lambda: progress.advance(task)))
        if "tensor" in chosen:
            from freight.bench._stores_tensor import bench_tensor

            task = progress.add_task(f"tensor handoff ({tensor_size} MiB)", total=steps["tensor"])
            rows += with_ratios(
                bench_tensor(tensor_size, reps, lambda: progress.advance(task)), higher_is_better=False
            )
    report("freight bench stores", rows, out=out, as_json=json_)

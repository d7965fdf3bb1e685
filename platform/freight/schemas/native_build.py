"""`make native`: compile the event codec (`fastcodec`) with mypyc into `freight.schemas._fastcodec_native`.

The part of fastcodec.py above its native marker is copied into a scratch directory as the top-level module
`_fastcodec_native`, stamped with its SHA-256 (`SOURCE_SHA256`), compiled there by mypyc, and the extension
module is copied next to fastcodec.py. fastcodec uses it only while the stamp matches its own source, so the
compiled code can never be older than the Python code. Optional: without it (no C compiler, another
platform, FREIGHT_PURE_PYTHON=1) the pure-Python codec runs, byte for byte the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from freight.schemas import fastcodec

NAME = "_fastcodec_native"


def build() -> Path:
    """Compile the codec; return the extension module's path (next to fastcodec.py).

    Returns:
        The path of the built extension module.

    Raises:
        RuntimeError: mypyc is missing or the compilation failed (its output is in the message).
    """
    source_path = Path(fastcodec.__file__)
    text = source_path.read_text(encoding="utf-8")
    compiled = text.split(fastcodec.NATIVE_MARKER, 1)[0]
    stamp = f'\n\nSOURCE_SHA256 = "{fastcodec.source_digest(text)}"\n'
    mypyc = shutil.which("mypyc", path=str(Path(sys.executable).parent)) or shutil.which("mypyc")
    if mypyc is None:
        raise RuntimeError("mypyc is not installed (it comes with mypy: pip install mypy)")
    package_root = source_path.parents[2]  # the directory that holds the freight package
    with tempfile.TemporaryDirectory(prefix="freight-native-") as tmp:
        (Path(tmp) / f"{NAME}.py").write_text(compiled.rstrip() + stamp, encoding="utf-8")
        env = {**os.environ, "MYPYPATH": str(package_root)}
        done = subprocess.run(
            [mypyc, "--ignore-missing-imports", f"{NAME}.py"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(Path(tmp).glob(f"{NAME}.*.so")) + sorted(Path(tmp).glob(f"{NAME}.*.pyd"))
        if done.returncode != 0 or not built:
            raise RuntimeError(
                f"mypyc failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
            )
        target = source_path.parent / built[0].name
        # A new file renamed over the old one: a process that has the old module loaded keeps its pages.
        staged = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.copyfile(built[0], staged)
        staged.replace(target)
    return target


def main() -> None:
    try:
        path = build()
    except RuntimeError as exc:
        print(f"freight: the native event codec was not built: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"built {path}")


if __name__ == "__main__":
    main()

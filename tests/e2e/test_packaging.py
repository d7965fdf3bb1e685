"""A built wheel installs into a fresh virtual environment and carries the package, connectors and schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_declared_packages_cover_every_package_directory() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(tool["packages"])
    dirs = tool["package-dir"]
    on_disk = set()
    for pkg, rel in [("freight", "platform/freight"), *((k, v) for k, v in dirs.items() if k)]:
        base = ROOT / rel
        for init in base.rglob("__init__.py"):
            sub = init.parent.relative_to(base).parts
            on_disk.add(".".join((pkg, *sub)))
    assert on_disk <= declared, f"add these to [tool.setuptools] packages: {sorted(on_disk - declared)}"


@pytest.mark.slow
def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is installed by `make install`"
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(tmp_path / "dist"), str(ROOT)], check=True)
    (wheel,) = (tmp_path / "dist").glob("freight-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), str(wheel)], check=True)
    probe = (
        "import json, freight, freight.connectors, freight.dev;"
        "from importlib.resources import files;"
        "names = sorted(p.name for p in files('freight.avsc').iterdir() if p.name.endswith('.avsc'));"
        "assert names, 'no schemas in the wheel';"
        "json.loads(files('freight.avsc').joinpath(names[0]).read_text());"
        "assert files('freight.kafka_infra').joinpath('pom.xml').is_file();"
        "print('ok', freight.__version__, names)"
    )
    out = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok 0.1.0")

"""`freight stores`: list, show and clean up a file store from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from freight.cli import main
from freight.connectors import FileConnector
from freight.stores import Store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = Store("cli", FileConnector(tmp_path))
    store.put(np.arange(12, dtype=">i4").reshape(3, 4), key="runs/a")
    store.put({"x": 1}, key="runs/b")
    store.put(b"other", key="misc")
    return tmp_path


def test_ls_lists_objects_as_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stores", "ls", "file", "-o", f"root={root}", "--prefix", "runs/", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [o["key"] for o in listed] == ["runs/a", "runs/b"]
    assert all(o["size"] > 64 for o in listed)


def test_show_reads_the_header_and_verifies(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stores", "show", "file", "runs/a", "-o", f"root={root}"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and ">i4" in out and "verified" in out
    path = root / "runs" / "a"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert main(["stores", "show", "file", "runs/a", "-o", f"root={root}"]) == 5
    assert "corrupt" in capsys.readouterr().err


def test_bad_arguments_are_clear_errors(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stores", "ls", "ftp"]) == 2
    assert "unknown connector kind 'ftp'" in capsys.readouterr().err
    assert main(["stores", "ls", "file", "-o", "root"]) == 2
    assert main(["stores", "show", "file", "nothing/here", "-o", f"root={root}"]) == 5
    assert "nothing/here" in capsys.readouterr().err
    assert main(["stores", "cleanup"]) == 2


def test_cleanup_removes_dead_writers_temp_files(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from freight.connectors import file

    (root / f"misc~999999999@{file._HOST_TAG}~x").write_bytes(b"partial")
    assert main(["stores", "cleanup", "--root", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"temp_files_removed": 1}

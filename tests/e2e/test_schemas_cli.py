"""`freight schemas ...` as a user runs it, against the session registry: JSON, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.registry_cases import DATA

from freight.cli import main
from freight.dev.procs import free_port

V2 = str(DATA / "object_event_v2.avsc")


@pytest.fixture
def cli(registry_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `freight <args>` in this process; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("FREIGHT_SCHEMA_REGISTRY_URL", registry_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def js(out: str) -> Any:
    return json.loads(out)


def test_register_list_get_versions_check_config_delete(cli: Any, subject: str, tmp_path: Path) -> None:
    code, out, _ = cli("schemas", "register", subject, "object_event", "--json")
    assert code == 0 and js(out)["version"] == 1
    first_id = js(out)["id"]
    code, out, _ = cli("schemas", "register", subject, V2, "--json")
    assert code == 0 and js(out)["version"] == 2

    code, out, _ = cli("schemas", "list", "--prefix", subject, "--json")
    assert js(out) == {"subjects": [{"subject": subject, "versions": [1, 2]}]}
    code, out, _ = cli("schemas", "get", subject, "--json")
    assert js(out)["version"] == 2 and json.loads(js(out)["schema"]) == json.loads(Path(V2).read_text())
    code, out, _ = cli("schemas", "get", "--id", str(first_id), "--json")
    assert subject in js(out)["subjects"]
    code, out, _ = cli("schemas", "get", subject, "1")
    assert code == 0 and '"ObjectEvent"' in out  # a table, then the schema pretty-printed

    broken = json.loads(Path(V2).read_text())
    broken["fields"].append({"name": "tenant", "type": "string"})
    (tmp_path / "v3.avsc").write_text(json.dumps(broken))
    code, out, _ = cli("schemas", "check", subject, str(tmp_path / "v3.avsc"), "--json")
    assert code == 7 and js(out)["is_compatible"] is False
    assert any("tenant" in m for m in js(out)["messages"])
    code, out, _ = cli("schemas", "check", subject, V2)
    assert code == 0 and "compatible" in out

    code, out, _ = cli("schemas", "config", subject, "--level", "full", "--json")
    assert js(out) == {"subject": subject, "compatibility": "FULL", "mode": "READWRITE"}
    code, out, _ = cli("schemas", "config", subject, "--reset", "--json")
    assert js(out)["compatibility"] == "BACKWARD"

    code, out, _ = cli("schemas", "delete", subject, "--version", "1", "--json")
    assert js(out)["deleted_versions"] == [1]
    code, out, _ = cli("schemas", "versions", subject, "--deleted", "--json")
    assert [(v["version"], v["deleted"]) for v in js(out)["versions"]] == [(1, True), (2, False)]
    code, out, _ = cli("schemas", "delete", subject, "--permanent")
    assert code == 7  # must be soft-deleted first
    code, out, _ = cli("schemas", "delete", subject, "--json")
    assert js(out)["deleted_versions"] == [2]
    code, out, _ = cli("schemas", "delete", subject, "--permanent", "--json")
    assert js(out) == {"subject": subject, "deleted_versions": [1, 2], "permanent": True}


def test_errors_are_one_clear_line_with_the_documented_exit_code(
    cli: Any, subject: str, tmp_path: Path
) -> None:
    (tmp_path / "bad.avsc").write_text('{"type": "record", "name": "Bad", "fields": [{"name": "x"}]}')
    code, _, err = cli("schemas", "register", subject, str(tmp_path / "bad.avsc"))
    assert code == 7 and "42201" in err and "Traceback" not in err
    code, _, err = cli("schemas", "versions", f"{subject}-missing")
    assert code == 7 and "40401" in err and subject in err
    code, _, err = cli("schemas", "register", subject, "no_such_schema")
    assert code == 2 and "object_event" in err
    code, _, err = cli("schemas", "register", subject, "object_event", "--reference", "oops")
    assert code == 2 and "name=subject:version" in err
    code, _, err = cli("schemas", "get")
    assert code == 2 and "--id" in err
    code, _, err = cli("schemas", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 3 and "freight dev up" in err


def test_the_console_command_runs_as_a_process(registry_url: str) -> None:
    env = {**os.environ, "FREIGHT_SCHEMA_REGISTRY_URL": registry_url}
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "schemas", "config", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert js(done.stdout)["mode"] == "READWRITE"


def test_dev_status_reports_the_registry_it_started(registry_url: str, dev_state_dir: Path) -> None:
    if os.environ.get("FREIGHT_SCHEMA_REGISTRY_URL"):
        pytest.skip("the registry was given by FREIGHT_SCHEMA_REGISTRY_URL, not started by `freight dev`")
    from freight.dev import status

    (registry,) = [s for s in status(dev_state_dir) if s.name == "registry"]
    assert registry.state == "running", registry.detail
    assert registry.env["FREIGHT_SCHEMA_REGISTRY_URL"] == registry_url


def test_json_schemas_from_the_cli(cli: Any, subject: str, tmp_path: Path) -> None:
    v1 = {"type": "object", "properties": {"id": {"type": "integer"}}, "additionalProperties": False}
    v2 = {**v1, "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}}
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    (tmp_path / "v2.json").write_text(json.dumps(v2))
    (tmp_path / "bad.json").write_text(json.dumps({**v2, "required": ["note"]}))
    code, out, err = cli(
        "schemas", "register", subject, str(tmp_path / "v1.json"), "--type", "json", "--json"
    )
    assert code == 0 and js(out)["version"] == 1, err
    code, out, _ = cli("schemas", "check", subject, str(tmp_path / "v2.json"), "-t", "JSON", "--json")
    assert code == 0 and js(out)["is_compatible"] is True
    code, out, _ = cli("schemas", "check", subject, str(tmp_path / "bad.json"), "-t", "JSON", "--json")
    assert code == 7 and any("note" in m for m in js(out)["messages"])
    code, out, err = cli("schemas", "register", subject, str(tmp_path / "v2.json"), "--type", "yaml")
    assert code == 2 and "AVRO, JSON and PROTOBUF" in err


def test_protobuf_schemas_from_the_cli(cli: Any, subject: str, tmp_path: Path) -> None:
    """--type PROTOBUF registers and checks .proto files (the registry compiles them; issue 17's leftover)."""
    head = 'syntax = "proto3";\npackage freight.test;\n'
    (tmp_path / "v1.proto").write_text(head + "message Reading {\n  string sensor = 1;\n}\n")
    (tmp_path / "v2.proto").write_text(
        head + "message Reading {\n  string sensor = 1;\n  double value = 2;\n}\n"
    )
    (tmp_path / "bad.proto").write_text(head + "message Reading {\n  int64 sensor = 1;\n}\n")
    (tmp_path / "broken.proto").write_text(head + "message Reading {\n  strin sensor = 1;\n}\n")
    code, out, err = cli(
        "schemas", "register", subject, str(tmp_path / "v1.proto"), "--type", "protobuf", "--json"
    )
    assert code == 0 and js(out)["version"] == 1, err
    code, out, _ = cli("schemas", "get", subject, "--json")
    assert js(out)["schemaType"] == "PROTOBUF" and "message Reading" in js(out)["schema"]
    code, out, _ = cli("schemas", "check", subject, str(tmp_path / "v2.proto"), "-t", "PROTOBUF", "--json")
    assert code == 0 and js(out)["is_compatible"] is True
    code, out, _ = cli("schemas", "check", subject, str(tmp_path / "bad.proto"), "-t", "PROTOBUF", "--json")
    assert code == 7 and js(out)["is_compatible"] is False
    code, _, err = cli("schemas", "register", subject, str(tmp_path / "broken.proto"), "-t", "PROTOBUF")
    assert code == 7 and "strin" in err  # protoc's message names the unknown type

"""One flag name per concept across the CLI (issue 16): every command that talks to Kafka takes
`--bootstrap/-b` and `--command-config`; old spellings stay as hidden aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

import freight.cli as cli


def commands() -> Iterator[tuple[str, Any]]:
    cli._mount_all()

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(typer.main.get_command(cli.app), [])


def options(cmd: Any) -> dict[str, Any]:
    return {opt: p for p in cmd.params if p.param_type_name == "option" for opt in p.opts}


def test_every_kafka_command_takes_bootstrap_b_and_command_config() -> None:
    kafka = {path: cmd for path, cmd in commands() if "--bootstrap" in options(cmd)}
    assert {"produce", "consume", "status", "registry serve", "groups reset-offsets", "topics alter"} <= set(
        kafka
    )
    for path, cmd in kafka.items():
        opts = options(cmd)
        assert "-b" in opts, path
        assert "--command-config" in opts, path


def test_the_registry_flag_is_registry_everywhere() -> None:
    for path, cmd in commands():
        opts = options(cmd)
        if "--url" in opts:
            assert opts["--url"].hidden and "--registry" in opts, path


def test_a_bad_command_config_is_a_clear_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "client.properties"
    bad.write_text("security.protocol=SASL_SSL\n=orphan value\n")
    assert cli.main(["topics", "list", "--command-config", str(bad), "-b", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "Traceback" not in err
    assert (
        cli.main(["groups", "list", "--command-config", str(tmp_path / "missing"), "-b", "127.0.0.1:1"]) == 2
    )
    assert "cannot read" in capsys.readouterr().err


def test_short_flags_mean_one_thing() -> None:
    """-r is --repetitions and -n is --count in every bench (the old -n of --repetitions is hidden)."""
    for path, cmd in commands():
        for p in cmd.params:
            if p.param_type_name != "option" or p.hidden:
                continue
            if "--repetitions" in p.opts:
                assert "-n" not in p.opts and ("-r" in p.opts or path == "bench buffer"), path
            if "-n" in p.opts:
                assert "--count" in p.opts, path


def test_the_old_short_name_of_repetitions_still_works() -> None:
    opts = options(dict(commands())["bench tensor"])
    assert opts["-n"].hidden and "-r" in opts

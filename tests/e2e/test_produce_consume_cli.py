"""`freight produce` / `freight consume` as a user runs them, and `freight demo` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.fixtures.cli import run_freight

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin

freight = run_freight


def test_produce_a_directory_and_consume_it_into_another(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    files = {"a.bin": os.urandom(10_000), "b.txt": b"hello", "nested/c.bin": os.urandom(50_000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    topic = f"cli-files-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"

    produced = freight(stream_settings, "produce", topic, str(src), "--store-dir", str(store), "--json")
    assert produced.returncode == 0, produced.stderr
    summary = json.loads(produced.stdout)
    assert summary["objects"] == 3 and summary["stored"] == 2 and summary["inline"] == 1

    out = tmp_path / "out"
    consumed = freight(
        stream_settings, "consume", topic, "--group", "g1", "--out", str(out), "--idle-timeout", "3"
    )
    assert consumed.returncode == 0, consumed.stderr
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == files  # relative paths kept: nested/c.bin is not flattened
    assert "consumed 3 object(s)" in consumed.stderr + consumed.stdout

    again = freight(stream_settings, "consume", topic, "--group", "g1", "--idle-timeout", "2", "--json")
    assert again.stdout.strip() == ""  # the group committed: nothing new


def test_stdin_lines_and_replay_options(stream_settings: FreightSettings, tmp_path: Path) -> None:
    topic = f"cli-lines-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    first = freight(
        stream_settings, "produce", topic, "--store-dir", store, "--no-end", stdin="one\ntwo\nthree\n"
    )
    assert first.returncode == 0, first.stderr
    time.sleep(0.05)
    middle = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    second = freight(stream_settings, "produce", topic, "--store-dir", store, stdin="four\nfive\n")
    assert second.returncode == 0, second.stderr

    def lines(*extra: str) -> list[str]:
        result = freight(stream_settings, "consume", topic, "--idle-timeout", "2", *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert lines("--from-beginning") == ["one", "two", "three", "four", "five"]
    assert lines("--offset", "3") == ["four", "five"]
    assert lines("--timestamp", middle) == ["four", "five"]
    assert lines("--from-beginning", "--max", "2") == ["one", "two"]
    meta = freight(
        stream_settings, "consume", topic, "--from-beginning", "--max", "1", "--json", "--idle-timeout", "2"
    )
    record = json.loads(meta.stdout.splitlines()[0])
    assert record["offset"] == 0 and record["stream"] == "default" and record["inline"] is True

    bad = freight(stream_settings, "consume", topic, "--offset", "1", "--from-beginning")
    assert bad.returncode == 2 and "at most one of" in bad.stderr
    missing = freight(stream_settings, "consume", "no-such-topic-xyz", "--idle-timeout", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_demo_runs_end_to_end_with_its_own_services(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREIGHT_")}
    result = subprocess.run(
        [sys.executable, "-m", "freight.cli", "demo", "--state-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo ok" in result.stdout
    assert "48/48" in result.stdout and "stopped the local services" in result.stdout
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""


def test_consume_out_never_overwrites_and_keeps_names_safe(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    topic = f"cli-same-names-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"
    contents = []
    for n in range(3):  # three files called big.bin in three directories, produced one by one
        d = tmp_path / f"run{n}"
        d.mkdir()
        data = os.urandom(5000 + n)
        (d / "big.bin").write_bytes(data)
        contents.append(data)
        done = freight(stream_settings, "produce", topic, str(d / "big.bin"), "--store-dir", str(store))
        assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    (out).mkdir()
    (out / "big.bin").write_bytes(b"the user's own file")
    consumed = freight(stream_settings, "consume", topic, "--out", str(out), "--idle-timeout", "3")
    assert consumed.returncode == 0, consumed.stderr
    assert (out / "big.bin").read_bytes() == b"the user's own file"  # never overwritten
    written = sorted(p.read_bytes() for p in out.iterdir() if p.name != "big.bin")
    assert written == sorted(contents)
    assert "3 written under a new name" in consumed.stderr

    none = freight(stream_settings, "consume", topic, "--max", "0", "--out", str(tmp_path / "o0"))
    assert none.returncode == 0 and "consumed 0 object(s)" in none.stderr
    assert not list((tmp_path / "o0").iterdir())


def test_a_hostile_filename_stays_under_out(stream_settings: FreightSettings, tmp_path: Path) -> None:
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    topic = f"cli-hostile-name-{uuid.uuid4().hex[:8]}"
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    with StreamProducer({None: store}, settings=stream_settings) as producer:
        producer.send(topic, b"x" * 10, metadata={"filename": "../../escaped.txt"})
        producer.send(topic, b"y" * 10, metadata={"filename": "/abs/path.txt"})
    out = tmp_path / "deep" / "out"
    consumed = freight(stream_settings, "consume", topic, "--out", str(out), "--idle-timeout", "3")
    assert consumed.returncode == 0, consumed.stderr
    assert (out / "escaped.txt").read_bytes() == b"x" * 10
    assert (out / "abs" / "path.txt").read_bytes() == b"y" * 10
    assert not (tmp_path / "escaped.txt").exists()


def test_a_bad_evict_value_is_a_clear_error(stream_settings: FreightSettings, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"z")
    done = freight(stream_settings, "produce", "t-x", str(tmp_path / "f"), "--evict", "sometimes")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "watermark, on-resolve, retention or never" in done.stderr


def test_ctrl_c_in_produce_and_consume_says_what_was_done(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    import signal
    import time

    topic = f"cli-ctrl-c-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=stream_settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=stream_settings.schema_registry_url,
    )

    def run_then_interrupt(
        cmd: list[str], lines: str | None, ready: Callable[[Path], bool]
    ) -> tuple[int, str, str]:
        out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
        with open(out_file, "w") as out, open(err_file, "w") as err:
            # Ctrl-C at a terminal reaches a process whose SIGINT is at its default; a test run started in
            # the background by a non-interactive shell (`cmd &`, as CI scripts may) inherits SIGINT ignored,
            # and the command would then never see the signal. Restore the default in the child.
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                text=True,
                env=env,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            assert proc.stdin is not None
            if lines:
                proc.stdin.write(lines)
                proc.stdin.flush()
            # Interrupt once the command did its work (not after a fixed time: on a loaded machine the
            # process may still be starting); stdin stays open, as a user typing would keep it.
            deadline = time.monotonic() + 90
            while not ready(out_file) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
        return code, out_file.read_text(), err_file.read_text()

    admin = KafkaAdmin(stream_settings)

    def three_records(_out: Path) -> bool:
        if not admin.topic_exists(topic):
            return False
        return sum(hi for _lo, hi in admin.watermarks(topic).values()) >= 3

    produce = [sys.executable, "-m", "freight.cli", "produce", topic, "--store-dir", str(tmp_path / "s")]
    code, _out, err = run_then_interrupt(produce, "line 0\nline 1\nline 2\n", three_records)
    assert code == 130, err
    assert "interrupted: 3 object(s) were sent and acknowledged, then END_OF_STREAM" in err
    assert "Traceback" not in err and "Aborted" not in err

    consume = [sys.executable, "-m", "freight.cli", "consume", topic, "--group", "g", "--idle-timeout", "60"]
    code, out, err = run_then_interrupt(consume, None, lambda out: len(out.read_text().splitlines()) >= 3)
    assert code == 130, err
    assert "interrupted: consumed 3 object(s)" in err and "(committed)" in err
    assert out.splitlines() == ["line 0", "line 1", "line 2"]


def test_error_text_is_never_read_as_markup(stream_settings: FreightSettings) -> None:
    done = freight(stream_settings, "topics", "describe", "[no-such-topic]")
    assert done.returncode == 2, done.stderr
    assert "'[no-such-topic]'" in done.stderr


def test_follow_waits_past_the_idle_timeout(stream_settings: FreightSettings, tmp_path: Path) -> None:
    """--follow has no idle exit: an event produced after the idle timeout still arrives (issue 16)."""
    topic = f"cli-follow-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    first = freight(stream_settings, "produce", topic, "--store-dir", store, "--no-end", stdin="one\n")
    assert first.returncode == 0, first.stderr
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=stream_settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=stream_settings.schema_registry_url,
    )
    args = ["consume", topic, "--follow", "--idle-timeout", "1", "--max", "2"]
    with subprocess.Popen(
        [sys.executable, "-m", "freight.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "one"
        time.sleep(2.5)  # longer than --idle-timeout: without --follow the consumer would have exited
        assert proc.poll() is None
        second = freight(stream_settings, "produce", topic, "--store-dir", store, "--no-end", stdin="two\n")
        assert second.returncode == 0, second.stderr
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split() == ["two"]


def test_describing_an_unknown_group_is_an_error(stream_settings: FreightSettings) -> None:
    """Not an empty DEAD table with exit 0 (issue 16)."""
    result = freight(stream_settings, "groups", "describe", f"no-such-group-{uuid.uuid4().hex[:8]}")
    assert result.returncode == 2, result.stdout
    assert "no consumer group named" in result.stderr and "Traceback" not in result.stderr

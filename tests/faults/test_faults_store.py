"""Store faults: the S3 endpoint stopped, refusing, hung or slow; a full or read-only file-store directory;
corrupted objects. Each is a clear error naming the object, in bounded time (a thread that does not finish
fails the test as a hang), and no wrong object ever reaches the user; an outage skips nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.faults.procs import STREAMS, check, payload
from tests.fixtures.faults import PrivateS3
from tests.fixtures.stream import child_env

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.errors import IntegrityError, ServiceUnavailableError, StoreAccessError
from freight.kafka import KafkaAdmin
from freight.stores import Store
from freight.stream import StreamConsumer, ref_of

HANG_S = 90.0  # far above every configured deadline: reaching it means the call hung


def bounded(fn: Callable[[], Any], what: str, limit: float = HANG_S) -> Any:
    """Run `fn` in a thread; its result or exception, or a test failure if it has not returned by `limit`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise AssertionError(f"{what} hung (no answer or error within {limit:g}s)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _send(make_producer: Callable[..., Any], store: Store, topic: str, n: int) -> list[str]:
    """Send items 0, 4, 8, ... (stored) as sequences 0..n-1 of stream s0; return their keys in order."""
    return [key for key, _checksum in _send_refs(make_producer, store, topic, n)]


def _send_refs(
    make_producer: Callable[..., Any], store: Store, topic: str, n: int
) -> list[tuple[str, str | None]]:
    """`_send`, returning (key, checksum recorded in the event) per item."""
    producer = make_producer({None: store})
    for i in range(n):
        producer.send(topic, payload(i * STREAMS), stream="s0")
    producer.flush()
    refs = []
    with StreamConsumer(topic, None, settings=producer.settings, until_high_watermark=True) as consumer:
        for proxy in consumer:
            ref = ref_of(proxy)
            assert ref.key is not None
            refs.append((ref.key, ref.checksum))
    assert len(refs) == n
    return refs


def _item(obj: Any, sequence: int) -> int:
    return check(obj, "s0", sequence)


# -- S3 --------------------------------------------------------------------------------------------------


def test_s3_endpoint_stopped_mid_run_is_a_clear_error_in_bounded_time(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    private_s3: PrivateS3,
) -> None:
    topic = make_topic()
    store = Store(f"s3down-{uuid.uuid4().hex[:8]}", private_s3.connector(proxied=False))
    keys = _send(make_producer, store, topic, 5)
    with StreamConsumer(
        topic, None, settings=stream_settings, stores=[store], until_high_watermark=True
    ) as consumer:
        items = consumer.iter_objects()
        assert [_item(next(items), q) for q in range(2)] == [0, 4]
        private_s3.stop()  # the endpoint crashes mid-run
        for _attempt in range(2):  # the item is not skipped: every call tries it again
            with pytest.raises(ServiceUnavailableError) as caught:
                bounded(lambda: next(items), "resolving from a stopped S3 endpoint")
            message = str(caught.value)
            assert f"get of {keys[2]!r} in s3://{private_s3.bucket}" in message
            assert (
                f"cannot reach the S3 endpoint {private_s3.direct_url}" in message and "try again" in message
            )
    # A producer cannot store while the endpoint is down: the send fails at once and produces nothing.
    producer = make_producer({None: store})
    with pytest.raises(ServiceUnavailableError, match=rf"put of '{topic}/[0-9a-f]+/000000000000'"):
        bounded(lambda: producer.send(topic, payload(20), stream="s0"), "a send to a stopped S3 endpoint")
    assert KafkaAdmin(stream_settings).watermarks(topic) == {0: (0, 5)}


def test_an_s3_outage_skips_nothing_once_the_endpoint_is_back(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    private_s3: PrivateS3,
    group_id: str,
) -> None:
    topic = make_topic()
    store = Store(f"s3flap-{uuid.uuid4().hex[:8]}", private_s3.connector())
    keys = _send(make_producer, store, topic, 8)
    got: list[int] = []
    with StreamConsumer(topic, group_id, settings=stream_settings, stores=[store]) as consumer:
        for _ in range(3):
            got.append(_item(consumer.next_object(timeout=30), len(got)))
        private_s3.proxy.set_mode("refuse")  # the endpoint goes away (connections reset)
        for _attempt in range(2):
            with pytest.raises(ServiceUnavailableError, match=f"get of {keys[3]!r}"):
                bounded(lambda: consumer.next_object(timeout=30), "resolving during an S3 outage")
        private_s3.proxy.set_mode("pass")  # and comes back: the failed item is next, nothing is skipped
        while len(got) < 8:
            got.append(_item(consumer.next_object(timeout=30), len(got)))
        consumer.commit()
    assert got == [4 * i for i in range(8)]
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {(topic, 0): 8}


@pytest.mark.long
def test_hung_stalled_and_slow_s3_endpoints(private_s3: PrivateS3) -> None:
    store = Store(f"s3slow-{uuid.uuid4().hex[:8]}", private_s3.connector(request_timeout=60.0))
    blob = np.random.default_rng(7).integers(0, 255, 1 << 20, dtype=np.uint8)
    ref = store.put(blob, key="slow/one")
    # Slow (every answer chunk delayed, each within the read timeout): slower, and still the right bytes.
    private_s3.proxy.set_mode("pass", delay_s=0.05)
    assert np.array_equal(bounded(lambda: store.get("slow/one", checksum=ref.checksum), "a slow get"), blob)
    store.put(blob[:1000], key="slow/two")
    # Hung (requests read, never answered): each attempt ends at read_timeout.
    private_s3.proxy.set_mode("blackhole")
    for call, action, key in (
        (lambda: store.get("slow/one"), "get", "slow/one"),
        (lambda: store.put(blob, key="slow/three"), "put", "slow/three"),
    ):
        with pytest.raises(ServiceUnavailableError, match=f"no answer to the {action} of {key!r}") as caught:
            bounded(call, f"a {action} on a hung endpoint")
        assert "ReadTimeoutError" in str(caught.value) and "read_timeout=2s" in str(caught.value)
    # Stalled (nothing read: the upload blocks once the socket buffers are full): request_timeout ends it.
    private_s3.proxy.set_mode("pass")
    impatient = Store(store.name, private_s3.connector(request_timeout=6.0))
    private_s3.proxy.set_mode("stall")
    big = np.zeros(24 << 20, dtype=np.uint8)
    with pytest.raises(
        ServiceUnavailableError, match="put_object did not complete within request_timeout=6s"
    ):
        bounded(lambda: impatient.put(big, key="slow/big"), "a put to a stalled endpoint")
    private_s3.proxy.set_mode("pass")
    assert np.array_equal(store.get("slow/one"), blob)  # back to normal
    assert not store.exists("slow/three") and not store.exists("slow/big")  # no partial object


def test_a_corrupted_s3_object_is_refused(s3_bucket: str, s3_fs: Any) -> None:
    from freight.connectors import S3Connector

    store = Store(f"s3bad-{uuid.uuid4().hex[:8]}", S3Connector(s3_bucket))
    ref = store.put(payload(3), key="bad/one")
    path = f"{s3_bucket}/bad/one"
    data = bytearray(s3_fs.cat_file(path))
    data[-100] ^= 0xFF
    s3_fs.pipe_file(path, bytes(data))
    with pytest.raises(IntegrityError, match=f"object 'bad/one' in store {store.name!r} is corrupt"):
        store.get("bad/one", checksum=ref.checksum)


# -- file store: full, read-only, corrupt -----------------------------------------------------------------

_FULL_CHILD = """
import json, os, resource, signal, sys
import numpy as np
from freight.connectors.file import FileConnector
from freight.errors import StoreError
from freight.stores import Store
from freight.stream import StreamProducer

# A file system with 1 MiB left, honestly simulated: the kernel refuses writes past RLIMIT_FSIZE (EFBIG).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
store = Store(sys.argv[2], FileConnector(sys.argv[3]))
producer = StreamProducer({None: store})
out = {}
try:
    producer.send(sys.argv[1], np.zeros(4 << 20, dtype=np.uint8), stream="s0")
except StoreError as exc:
    out["error"] = [type(exc).__name__, str(exc)]
producer.send(sys.argv[1], np.ones(64 << 10, dtype=np.uint8), stream="s0").result(60)
producer.close()
print(json.dumps(out))
"""


def test_a_full_file_system_is_a_clear_error_and_produces_nothing(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    root = tmp_path / "store"
    name = f"full-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_CHILD, topic, name, str(root)],
        env=child_env(stream_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kind, message = json.loads(done.stdout.strip().splitlines()[-1])["error"]
    assert kind == "StoreError"
    assert f"cannot write object '{topic}/" in message and f"in file store {root}" in message
    assert "file system is full, or a quota or file size limit was reached; nothing was stored" in message
    connector = FileConnector(root)
    assert connector.temp_files() == []  # the partial temporary file was removed
    assert len(list(connector.list())) == 1  # only the small object that fitted
    assert KafkaAdmin(stream_settings).watermarks(topic) == {0: (0, 1)}  # no event for the failed send


_READ_ONLY_CHILD = """
import json, os, sys
from freight.connectors.file import FileConnector
from freight.errors import StoreError
from freight.stores import Store

if os.geteuid() == 0:  # root ignores permission bits: act as an unprivileged user
    try:
        os.setgid(65534)
        os.setuid(65534)
    except PermissionError as exc:
        print(json.dumps({"skip": f"cannot drop root privileges here: {exc}"}))
        sys.exit(0)
store = Store("ro", FileConnector(sys.argv[1]))
out = {"read": bytes(store.get("kept/one")).decode()}
for action, call in (("put", lambda: store.put(b"x" * 10000, key="kept/two")),
                     ("evict", lambda: store.evict("kept/one"))):
    try:
        call()
        out[action] = None
    except StoreError as exc:
        out[action] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp tree, so an unprivileged child can reach it."""
    path = Path(tempfile.mkdtemp(prefix="freight-faults-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def test_a_read_only_directory_is_a_clear_error_and_reads_still_work(shared_dir: Path) -> None:
    root = shared_dir / "store"
    Store("ro", FileConnector(root)).put(b"still readable", key="kept/one")
    for directory in (root, root / "kept"):
        directory.chmod(0o555)
    done = subprocess.run(
        [sys.executable, "-c", _READ_ONLY_CHILD, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(shared_dir)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["read"] == "still readable"
    for action, key in (("put", "kept/two"), ("evict", "kept/one")):
        kind, message = out[action]
        verb = "write" if action == "put" else "delete"
        assert kind == StoreAccessError.__name__
        assert f"cannot {verb} object {key!r} in file store {root}: Permission denied" in message
        assert "fix the directory's permissions or choose another root" in message
    assert sorted(p.name for p in (root / "kept").iterdir()) == ["one"]


def test_corrupted_file_objects_are_refused_and_the_consumer_goes_on(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
) -> None:
    topic = make_topic()
    refs = _send_refs(make_producer, file_store, topic, 6)
    keys = [key for key, _ in refs]
    root = file_store.connector.root
    flipped = bytearray((root / keys[1]).read_bytes())
    flipped[-10] ^= 0x01  # one bit of the payload
    (root / keys[1]).write_bytes(bytes(flipped))
    (root / keys[2]).write_bytes((root / keys[5]).read_bytes())  # another valid object in its place
    (root / keys[3]).write_bytes((root / keys[3]).read_bytes()[:-1000])  # truncated
    header = bytearray((root / keys[4]).read_bytes())
    header[20] ^= 0x10  # the framing header (payload length)
    (root / keys[4]).write_bytes(bytes(header))

    expected = {
        1: "is corrupt: its payload hashes to",
        2: "does not match the checksum its event recorded",
        3: "is truncated or was overwritten",
        4: "has a corrupt header",
    }
    outcomes: list[Any] = []
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as consumer:
        items = consumer.iter_objects()
        while True:
            try:
                outcomes.append(_item(next(items), len(outcomes)))
            except IntegrityError as exc:
                outcomes.append(str(exc))
            except StopIteration:
                break
    assert outcomes[0] == 0 and outcomes[5] == 20  # the intact ones, right bytes
    for i, text in expected.items():
        assert isinstance(outcomes[i], str), f"item {i} was handed out despite its corruption"
        assert f"object {keys[i]!r} in store {file_store.name!r}" in outcomes[i] and text in outcomes[i]
    for i in expected:  # the same when read into memory instead of memory-mapped
        with pytest.raises(IntegrityError, match=expected[i]):
            file_store.get(keys[i], checksum=refs[i][1])

"""S3 connector against moto's real HTTP server: multipart objects, batches, every error a user can hit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from freight.connectors import S3Connector
from freight.dev.procs import free_port, stop_process
from freight.dev.s3_service import MotoS3Service
from freight.dev.state import ServiceRecord
from freight.errors import (
    BucketNotFoundError,
    ConfigError,
    PortInUseError,
    ServiceUnavailableError,
    StoreAccessError,
)
from freight.stores import Store, StoreConfig, build_connector

PART = 5 << 20


def test_multipart_object_above_the_part_size(s3_bucket: str, s3_fs: Any) -> None:
    conn = S3Connector(s3_bucket, prefix="mp", part_size=PART, max_concurrency=4)
    store = Store("s3-mp", conn)
    original = np.random.default_rng(3).standard_normal((2 * PART + PART // 2) // 8)  # 12.5 MiB
    ref = store.put(original, key="big")
    info = s3_fs.info(f"{s3_bucket}/mp/big")
    assert info["size"] == ref.size > 2 * PART
    assert str(info["ETag"]).strip('"').endswith("-3"), "expected a 3-part multipart upload"
    back = store.get("big", checksum=ref.checksum)  # read back with concurrent ranged GETs
    np.testing.assert_array_equal(back, original)
    # The object is plain bytes at prefix/key: other S3 tools read the same bytes.
    assert s3_fs.cat_file(f"{s3_bucket}/mp/big") == bytes(conn.get("big"))


def test_object_of_exactly_one_part_and_small_objects(s3_bucket: str, s3_fs: Any) -> None:
    conn = S3Connector(s3_bucket, part_size=PART)
    exact = np.random.default_rng(4).integers(0, 256, PART, dtype=np.uint8)
    conn.put("exact", [exact[:100], exact[100:]])
    assert "-" not in str(s3_fs.info(f"{s3_bucket}/exact")["ETag"]), "one part needs no multipart upload"
    assert bytes(conn.get("exact")) == exact.tobytes()
    conn.put("one-more", [exact, b"!"])
    assert bytes(conn.get("one-more")) == exact.tobytes() + b"!"


def test_concurrent_batches(s3_bucket: str) -> None:
    store = Store("s3-batch", S3Connector(s3_bucket, max_concurrency=8))
    objs = [np.full(10_000 + i, i, dtype=np.int16) for i in range(24)]
    refs = store.put_batch(objs, [f"b/{i:02d}" for i in range(24)])
    back = store.get_batch([r.key for r in refs], checksums=[r.checksum for r in refs])
    for got, obj in zip(back, objs, strict=True):
        np.testing.assert_array_equal(got, obj)
    assert [i.key for i in store.connector.list("b/")] == [f"b/{i:02d}" for i in range(24)]
    assert store.evict_batch([r.key for r in refs[:10]] + ["b/none"]) == 10


def test_prefixes_isolate_stores_in_one_bucket(s3_bucket: str) -> None:
    a = S3Connector(s3_bucket, prefix="team-a")
    b = S3Connector(s3_bucket, prefix="team-b/run-1")
    a.put("k", b"from a")
    b.put("k", b"from b")
    assert bytes(a.get("k")) == b"from a" and bytes(b.get("k")) == b"from b"
    assert [i.key for i in b.list()] == ["k"]
    assert a.evict("k") and bytes(b.get("k")) == b"from b"


def test_config_travels_without_secrets_and_rebuilds(s3_bucket: str, s3_endpoint: str) -> None:
    store = Store("s3-cfg", S3Connector(s3_bucket, prefix="cfg", part_size=PART))
    ref = store.put({"hello": "world"}, key="x")
    cfg = store.config()
    assert cfg.options == {
        "bucket": s3_bucket,
        "prefix": "cfg",
        "part_size": PART,
        "endpoint_url": s3_endpoint,
    }
    record = StoreConfig.from_avro(cfg.to_avro())
    assert Store.from_config(record).get("x", checksum=ref.checksum) == {"hello": "world"}


@pytest.mark.parametrize("secret", ["key", "secret", "aws_secret_access_key", "token"])
def test_credentials_in_options_are_refused(s3_bucket: str, secret: str) -> None:
    with pytest.raises(ConfigError, match="credentials never go there"):
        build_connector("s3", {"bucket": s3_bucket, secret: "AKIA..."})
    with pytest.raises(ValueError, match="credentials"):
        StoreConfig(name="leaky", connector="s3", options={"bucket": s3_bucket, secret: "x"})


def test_bad_options_are_config_errors(s3_bucket: str) -> None:
    with pytest.raises(ConfigError, match="part_size"):
        S3Connector(s3_bucket, part_size=1024)
    with pytest.raises(ConfigError, match="not a valid S3 bucket name"):
        S3Connector("Bad_Bucket")
    with pytest.raises(ConfigError, match="known options"):
        S3Connector(s3_bucket, colour="blue")


def test_missing_bucket_is_a_clear_error_or_created_on_request(s3_endpoint: str, s3_fs: Any) -> None:
    with pytest.raises(BucketNotFoundError, match="does not exist at"):
        S3Connector("freight-no-such-bucket")
    conn = S3Connector("freight-created-on-demand", create_bucket=True)
    conn.put("k", b"v")
    assert s3_fs.cat_file("freight-created-on-demand/k") == b"v"
    assert "create_bucket" not in conn.config()


def test_unreachable_endpoint_is_service_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailableError, match="cannot reach the S3 endpoint"):
        S3Connector("freight-any", endpoint_url=url, retries=1, connect_timeout=1)


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceRecord]:
    """A second moto server that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    service = MotoS3Service(
        tmp_path_factory.mktemp("strict-s3"), free_port(), extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    )
    record = service.start()
    yield record
    stop_process(record.pid, grace_s=5)


def test_wrong_credentials_are_an_access_error(
    strict_s3: ServiceRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MotoS3Service.health(strict_s3)[0]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StoreAccessError, match="AWS_ACCESS_KEY_ID") as info:
        S3Connector("freight-strict", endpoint_url=strict_s3.address, retries=1)
    assert "wrong-secret" not in str(info.value)


def test_dev_service_refuses_a_taken_port(s3_endpoint: str, tmp_path: Path) -> None:
    port = urlparse(s3_endpoint).port
    if port is None or "127.0.0.1" not in s3_endpoint:
        pytest.skip("the session endpoint is not local")
    with pytest.raises(PortInUseError, match="--s3-port"):
        MotoS3Service(tmp_path, port).start()

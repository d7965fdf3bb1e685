"""`S3Connector`: objects in an S3 bucket (AWS, MinIO, moto) through s3fs's async client.

Keys map to `<prefix>/<key>` in the bucket. Objects above `multipart_threshold` (default 2 x `part_size`, as
s3fs does) are written with a concurrent multipart upload whose parts are sliced from the caller's buffers (no
whole-object concatenation) and read with concurrent ranged GETs into one preallocated buffer; smaller objects
take one request each way (a GET of the first `multipart_threshold` bytes also tells the total size, so no
HEAD is needed). Batches run concurrently.

Credentials come only from the process environment or the AWS profile chain (AWS_ACCESS_KEY_ID, AWS_PROFILE,
instance roles...); options that look like credentials are refused, because store options travel in Kafka.
The endpoint comes from the `endpoint_url` option, else FREIGHT_S3_ENDPOINT_URL, else AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import numpy as np
from pydantic import Field, field_validator

from freight.connectors._options import ConnectorOptions
from freight.connectors.keys import validate_key
from freight.connectors.protocol import Blob, Buffer, ObjectInfo, byte_views
from freight.errors import (
    BucketNotFoundError,
    ConfigError,
    ObjectNotFoundError,
    ServiceUnavailableError,
    StoreAccessError,
    StoreError,
)
from freight.redact import redact_url

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
_RANGE_TOTAL = re.compile(r"/(\d+)$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCESS_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}

_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
_FILESYSTEMS: dict[tuple[Any, ...], Any] = {}
_FILESYSTEMS_LOCK = threading.Lock()

T = TypeVar("T")


class S3Options(ConnectorOptions):
    kind_name = "s3"
    bucket: str = Field(description="Bucket name (3-63 lowercase letters, digits, '.', '-').")
    prefix: str = Field("", description="Key prefix inside the bucket, e.g. 'freight/run-1'.")
    endpoint_url: str | None = Field(
        None, description="S3 endpoint; default FREIGHT_S3_ENDPOINT_URL, else AWS."
    )
    region: str | None = Field(None, description="Region; default from the AWS environment/profile.")
    profile: str | None = Field(None, description="AWS profile name (credentials stay in ~/.aws).")
    part_size: int = Field(16 * MiB, ge=MIN_PART_SIZE, le=5 << 30, description="Multipart part size.")
    multipart_threshold: int | None = Field(
        None,
        ge=MIN_PART_SIZE,
        le=5 << 30,
        description="Objects larger than this move in concurrent parts; default 2 x part_size.",
    )
    max_concurrency: int = Field(8, ge=1, le=128, description="Parallel requests per object and per batch.")
    retries: int = Field(3, ge=1, le=20, description="Attempts per request for transient errors.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(60.0, gt=0, description="Seconds without a byte of the answer.")
    request_timeout: float = Field(
        300.0,
        gt=0,
        description="Deadline of one request, its retries included: an endpoint that stops answering "
        "in the middle of a request is an error after this long, never a hang.",
    )
    check_bucket: bool = Field(True, description="Check at construction that the bucket exists and answers.")
    create_bucket: bool = Field(False, description="Create the bucket if it does not exist.")

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError(f"{value!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if value:
            validate_key(value)
        return value


#: Environment variables holding S3 secrets, and the places botocore's DEBUG logs show credentials: the
#: session token (canonical request, request headers) and request signatures.
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_TOKEN_IN_LOG = re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,}]+)", re.IGNORECASE)
_SIGNATURE_IN_LOG = re.compile(r"(Signature=)([0-9a-f]{16,})")
_BOTOCORE_LOGGERS = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.httpsession",
    "botocore.hooks",
    "botocore.parsers",
    "botocore.retryhandler",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "s3fs",
)


class _RedactCredentials(logging.Filter):
    """Blanks credentials in what botocore logs at DEBUG (it logs the session token with each signed
    request), so that turning on debug logging never writes an S3 secret to a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        cleaned = _SIGNATURE_IN_LOG.sub(r"\1<redacted>", _TOKEN_IN_LOG.sub(r"\1<redacted>", text))
        for name in _SECRET_VARIABLES:
            value = os.environ.get(name)
            if value and len(value) >= 8:
                cleaned = cleaned.replace(value, "<redacted>")
        if cleaned != text:
            record.msg, record.args = cleaned, None
        return True


def _redact_botocore_logs() -> None:
    """Install the credential filter on botocore's loggers (once)."""
    for name in _BOTOCORE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactCredentials) for f in logger.filters):
            logger.addFilter(_RedactCredentials())


class _RequestTimeoutError(TimeoutError):
    """One S3 request (retries included) outlived `request_timeout`."""


#: Exceptions (by class name: botocore, aiohttp and urllib3 define their own) meaning the endpoint did not
#: answer: it is down, unreachable, or stopped answering mid-request.
_UNREACHABLE_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientOSError",
        "FSTimeoutError",
    }
)


def _error_code(exc: BaseException) -> str | None:
    for err in (exc, exc.__cause__, exc.__context__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code is not None:
                return str(code)
    return None


class S3Connector:
    """Objects under `s3://bucket/prefix/`."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", **options: Any) -> None:
        self.options = S3Options.parse({"bucket": bucket, "prefix": prefix, **options})
        self.bucket = self.options.bucket
        self.prefix = self.options.prefix
        self.part_size = self.options.part_size
        self.threshold = self.options.multipart_threshold or 2 * self.part_size
        self.endpoint_url = self.options.endpoint_url or os.environ.get("FREIGHT_S3_ENDPOINT_URL") or None
        self.fs = self._filesystem()
        if self.options.check_bucket or self.options.create_bucket:
            self._check_bucket()

    @property
    def endpoint_shown(self) -> str:
        """The endpoint for messages: a password in its URL masked, 'AWS' when unset."""
        return redact_url(self.endpoint_url) or "AWS"

    def __repr__(self) -> str:
        return f"S3Connector({self.location}, endpoint={self.endpoint_shown})"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _filesystem(self) -> Any:
        """An s3fs filesystem for these options, shared by connectors with the same ones (creating a
        botocore client takes a good fraction of a second; sharing also shares the connection pool)."""
        opts = self.options
        # Credentials are read when the client is made: key the cache on (a digest of) them too.
        creds = hashlib.sha256(
            "\0".join(os.environ.get(v, "") for v in _CREDENTIAL_VARIABLES).encode()
        ).hexdigest()
        cache_key = (
            self.endpoint_url,
            opts.region,
            opts.profile,
            opts.max_concurrency,
            opts.retries,
            opts.connect_timeout,
            opts.read_timeout,
            creds,
        )
        with _FILESYSTEMS_LOCK:
            fs = _FILESYSTEMS.get(cache_key)
            if fs is None:
                fs = _FILESYSTEMS[cache_key] = self._new_filesystem()
        return fs

    def _new_filesystem(self) -> Any:
        import s3fs
        from aiobotocore.session import AioSession
        from botocore.handlers import add_expect_header

        opts = self.options
        _redact_botocore_logs()
        # Without "Expect: 100-continue": aiohttp starts the read timeout only once the body is sent, and
        # while it waits for the "100 Continue" of an endpoint that stopped answering, a put would hang
        # forever. S3 needs no 100-continue (it only saves sending a body that will be refused).
        session = AioSession(profile=opts.profile) if opts.profile else AioSession()
        session.unregister("before-call.s3", add_expect_header)
        fs = s3fs.S3FileSystem(
            endpoint_url=self.endpoint_url,
            skip_instance_cache=True,
            max_concurrency=opts.max_concurrency,
            session=session,
            client_kwargs={"region_name": opts.region} if opts.region else {},
            config_kwargs={
                "retries": {"max_attempts": opts.retries, "mode": "standard"},
                "connect_timeout": opts.connect_timeout,
                "read_timeout": opts.read_timeout,
                "max_pool_connections": max(10, 2 * opts.max_concurrency),
            },
        )
        # botocore retries (with backoff, throttling-aware); s3fs would retry each of its attempts again,
        # multiplying `retries` (3 x 3 attempts of `read_timeout` each for an endpoint that hangs).
        fs.retries = 1
        return fs

    # -- plumbing ----------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _run(self, factory: Callable[[], Awaitable[T]], what: str, key: str | None = None) -> T:
        from fsspec.asyn import sync

        async def call() -> T:
            return await factory()

        try:
            return sync(self.fs.loop, call)  # type: ignore[no-any-return]
        except (StoreError, ConfigError):
            raise
        except Exception as exc:
            raise self._translate(exc, what, key) from exc

    def _translate(self, exc: BaseException, what: str, key: str | None) -> Exception:
        while type(exc).__name__ == "FSTimeoutError" and exc.__cause__ is not None:
            exc = exc.__cause__  # fsspec's sync() wraps every TimeoutError: report the real one
        code = _error_code(exc)
        where = f"{self.location} at {self.endpoint_shown}"
        if code == "NoSuchBucket":
            return BucketNotFoundError(
                f"S3 bucket {self.bucket!r} does not exist at {self.endpoint_shown}; create it, set "
                "the store option create_bucket: true, or fix the bucket option"
            )
        if code in _NOT_FOUND_CODES and key is not None:
            return ObjectNotFoundError(f"no object {key!r} in {self.location}")
        name = type(exc).__name__
        if (
            code in _ACCESS_CODES
            or name in {"NoCredentialsError", "PartialCredentialsError"}
            or (isinstance(exc, PermissionError))
        ):
            return StoreAccessError(
                f"S3 refused {what} on {where} ({code or name}: {exc}). Check this process's credentials: "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE; they "
                "come from the environment, never from store options"
            )
        target = f"{what} of {key!r} in {self.location}" if key is not None else f"{what} on {self.location}"
        if code is None and (name in _UNREACHABLE_NAMES or isinstance(exc, ConnectionError | TimeoutError)):
            opts = self.options
            return ServiceUnavailableError(
                f"cannot reach the S3 endpoint {self.endpoint_shown}: no answer to the {target} "
                f"({name}: {exc}; "
                f"{opts.retries} attempt(s), connect_timeout={opts.connect_timeout:g}s, "
                f"read_timeout={opts.read_timeout:g}s, request_timeout={opts.request_timeout:g}s). Check "
                "that the endpoint is up and reachable (`freight dev up --service s3` starts a local one; "
                "FREIGHT_S3_ENDPOINT_URL or the endpoint_url option chooses it) and try again"
            )
        return StoreError(f"S3 {target} at {self.endpoint_shown} failed: {code or name}: {exc}")

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(
                self.fs._call_s3(method, Bucket=self.bucket, **kwargs), self.options.request_timeout
            )
        except TimeoutError:
            raise _RequestTimeoutError(
                f"{method} did not complete within request_timeout={self.options.request_timeout:g}s"
            ) from None

    def _check_bucket(self) -> None:
        async def check() -> None:
            try:
                await self._call("head_bucket")
            except Exception as exc:
                code = _error_code(exc)
                if code in {"404", "NoSuchBucket", "NotFound"} or isinstance(exc, FileNotFoundError):
                    if not self.options.create_bucket:
                        raise BucketNotFoundError(
                            f"S3 bucket {self.bucket!r} does not exist at {self.endpoint_shown}; "
                            "create it, set the store option create_bucket: true, or fix the bucket option"
                        ) from None
                    await self._create_bucket()
                else:
                    raise

        self._run(check, "bucket check")

    async def _create_bucket(self) -> None:
        kwargs: dict[str, Any] = {}
        region = self.options.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._call("create_bucket", **kwargs)
        except Exception as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    # -- writing -----------------------------------------------------------------------------------------

    async def _put(self, key: str, views: list[memoryview]) -> None:
        s3key = self._key(key)
        total = sum(v.nbytes for v in views)
        if total <= self.threshold:
            await self._call("put_object", Key=s3key, Body=_join(views, 0, total))
            return
        mpu = await self._call("create_multipart_upload", Key=s3key)
        upload_id = mpu["UploadId"]
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def part(number: int, start: int) -> dict[str, Any]:
            async with limit:
                body = _join(views, start, min(start + self.part_size, total))  # sliced per part
                out = await self._call(
                    "upload_part", Key=s3key, UploadId=upload_id, PartNumber=number, Body=body
                )
                return {"PartNumber": number, "ETag": out["ETag"]}

        try:
            parts = await asyncio.gather(
                *(part(i + 1, start) for i, start in enumerate(range(0, total, self.part_size)))
            )
            await self._call(
                "complete_multipart_upload",
                Key=s3key,
                UploadId=upload_id,
                MultipartUpload={"Parts": list(parts)},
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                await self._call("abort_multipart_upload", Key=s3key, UploadId=upload_id)
            raise

    def put(self, key: str, data: Blob) -> None:
        views = byte_views(data)
        self._run(lambda: self._put(key, views), "put", key)

    def put_batch(self, items: Sequence[tuple[str, Blob]]) -> None:
        prepared = [(key, byte_views(data)) for key, data in items]
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def one(key: str, views: list[memoryview]) -> None:
            async with limit:
                await self._put(key, views)

        async def run() -> None:
            await asyncio.gather(*(one(k, v) for k, v in prepared))

        self._run(run, f"put_batch of {len(prepared)} objects")

    # -- reading -----------------------------------------------------------------------------------------

    async def _get(self, key: str) -> Buffer:
        s3key = self._key(key)
        try:
            first = await self._call("get_object", Key=s3key, Range=f"bytes=0-{self.threshold - 1}")
        except Exception as exc:
            if _error_code(exc) != "InvalidRange":
                raise
            first = await self._call("get_object", Key=s3key)  # an empty object has no byte range
        head = await _read_body(first, self.options.request_timeout)
        match = _RANGE_TOTAL.search(first.get("ContentRange") or "")
        total = int(match.group(1)) if match else len(head)
        if total <= len(head):
            return head
        buf = np.empty(total, dtype=np.uint8)
        buf[: len(head)] = np.frombuffer(head, dtype=np.uint8)
        etag = first.get("ETag")
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def part(start: int) -> None:
            end = min(start + self.part_size, total) - 1
            async with limit:
                # If-Match: a concurrent overwrite fails the read instead of mixing two versions.
                extra = {"IfMatch": etag} if etag else {}
                resp = await self._call("get_object", Key=s3key, Range=f"bytes={start}-{end}", **extra)
                data = await _read_body(resp, self.options.request_timeout)
            buf[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)

        await asyncio.gather(*(part(start) for start in range(len(head), total, self.part_size)))
        return buf.data

    async def _get_retrying(self, key: str) -> Buffer:
        for attempt in range(3):
            try:
                return await self._get(key)
            except Exception as exc:
                if _error_code(exc) != "PreconditionFailed" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, key: str) -> Buffer:
        return self._run(lambda: self._get_retrying(key), "get", key)

    def get_batch(self, keys: Sequence[str]) -> list[Buffer | None]:
        for key in keys:
            validate_key(key)
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def one(key: str) -> Buffer | None:
            async with limit:
                try:
                    return await self._get_retrying(key)
                except Exception as exc:
                    if _error_code(exc) in _NOT_FOUND_CODES:
                        return None
                    raise self._translate(exc, "get_batch", key) from exc

        async def run() -> list[Buffer | None]:
            return list(await asyncio.gather(*(one(k) for k in keys)))

        return self._run(run, f"get_batch of {len(keys)} objects")

    async def _exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=self._key(key))
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND_CODES or isinstance(exc, FileNotFoundError):
                return False
            raise
        return True

    def exists(self, key: str) -> bool:
        return self._run(lambda: self._exists(key), "exists", key)

    # -- deleting and listing ----------------------------------------------------------------------------

    def evict(self, key: str) -> bool:
        return self.evict_batch([key]) == 1

    def evict_batch(self, keys: Sequence[str]) -> int:
        """Delete `keys`; S3 deletes say nothing of existence, so existing keys are found with HEADs first."""
        for key in keys:
            validate_key(key)
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def probe(key: str) -> bool:
            async with limit:
                return await self._exists(key)

        async def run() -> int:
            found = [
                k for k, ok in zip(keys, await asyncio.gather(*(probe(k) for k in keys)), strict=True) if ok
            ]
            for i in range(0, len(found), 1000):
                chunk = found[i : i + 1000]
                out = await self._call(
                    "delete_objects",
                    Delete={"Objects": [{"Key": self._key(k)} for k in chunk], "Quiet": True},
                )
                if out.get("Errors"):
                    err = out["Errors"][0]
                    raise StoreError(
                        f"S3 could not delete {len(out['Errors'])} object(s) from {self.location}, e.g. "
                        f"{err.get('Key')}: {err.get('Code')} {err.get('Message')}"
                    )
            return len(found)

        return self._run(run, f"evict of {len(keys)} objects")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix:
            validate_key(prefix.rstrip("/") or "_")
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token

            async def page(kw: dict[str, Any] = kwargs) -> Any:
                return await self._call("list_objects_v2", **kw)

            out = self._run(page, "list")
            for item in out.get("Contents", []):
                modified = item.get("LastModified")
                stamp = modified.timestamp() if isinstance(modified, datetime) else 0.0
                yield ObjectInfo(item["Key"][strip:], int(item.get("Size", 0)), stamp)
            if not out.get("IsTruncated"):
                return
            token = out.get("NextContinuationToken")

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Nothing to release eagerly: s3fs closes its HTTP session when the connector is collected."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        out = self.options.model_dump(exclude_defaults=True)
        out["bucket"] = self.bucket
        if self.endpoint_url:
            out["endpoint_url"] = self.endpoint_url  # the producer's endpoint, so consumers find the bytes
        out.pop("create_bucket", None)
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        opts = S3Options.parse(config)
        return cls(**opts.model_dump())


def _join(views: list[memoryview], start: int, end: int) -> bytes | bytearray:
    """Bytes [start, end) of the concatenation of `views`, as botocore accepts (bytes; it refuses views)."""
    pieces: list[memoryview] = []
    offset = 0
    for view in views:
        lo, hi = max(start - offset, 0), min(end - offset, view.nbytes)
        if lo < hi:
            pieces.append(view[lo:hi])
        offset += view.nbytes
        if offset >= end:
            break
    if (
        len(pieces) == 1
        and isinstance(pieces[0].obj, bytes | bytearray)
        and pieces[0].nbytes == len(pieces[0].obj)
    ):
        return pieces[0].obj  # a whole bytes object: no copy
    return b"".join(pieces)


async def _read_body(response: Mapping[str, Any], timeout: float) -> bytes:
    body = response["Body"]
    try:
        data: bytes = await asyncio.wait_for(body.read(), timeout)
    except TimeoutError:
        raise _RequestTimeoutError(f"reading the object did not complete within {timeout:g}s") from None
    finally:
        body.close()
    return data

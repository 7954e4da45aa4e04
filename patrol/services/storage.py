"""Where photo files live: one small interface, two backends.

`LocalStorage` (the default) keeps files under a folder; `S3Storage` keeps objects in an
S3-compatible store (MinIO, Aliyun OSS, Tencent COS, AWS), chosen by PATROL_STORAGE
(docs/storage.md). Keys are relative paths such as `ab/ab12….jpg`.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str = "") -> Iterator[str]: ...
    def modified_at(self, key: str) -> datetime: ...
    def now(self) -> datetime: ...
    def local_path(self, key: str) -> Path | None: ...


class LocalStorage:
    """Files under one directory; writes are atomic (temp file, fsync, rename)."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"bad storage key {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():  # content-addressed: same key, same bytes
            os.utime(path)  # in use again: the orphan sweep must see it as a fresh write
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key, or those under a folder-like `prefix` ("imports/")."""
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()

    def modified_at(self, key: str) -> datetime:
        """Naive UTC, like the database's times."""
        return _naive_utc(self._path(key).stat().st_mtime)

    def now(self) -> datetime:
        """The clock that sets file times (naive UTC), to compare `modified_at` with.

        Not the app's clock: that one can be moved (the tests run at fixed instants with
        time-machine), and a file system, e.g. on another machine, keeps its own time.
        A probe file is created and removed; were it left behind, it is a `.tmp-` file
        like any interrupted write."""
        fd, probe = tempfile.mkstemp(dir=self.root, prefix=".tmp-clock-")
        try:
            return _naive_utc(os.fstat(fd).st_mtime)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _naive_utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None)


class S3Storage:
    """Objects in one bucket of an S3-compatible store, under an optional key prefix.

    A write is one PutObject, which is atomic: the object appears whole under its key or
    not at all (there is no temporary object to leave behind). Times are the store's own
    clock: `modified_at` is the object's Last-Modified, `now` the Date the store answers
    with, so the orphan sweep compares two readings of one clock.
    """

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, addressing_style: str = "auto",
                 public_endpoint_url: str | None = None):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = BotoConfig(
            s3={"addressing_style": addressing_style},
            signature_version="s3v4",
            # Checksums only where S3 requires them: several S3-compatible stores refuse
            # the newer default trailing checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5, read_timeout=30)
        session = boto3.session.Session(aws_access_key_id=access_key_id,
                                         aws_secret_access_key=secret_access_key,
                                         region_name=region or "us-east-1")
        self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # Presigned links are followed by browsers: they may need another address.
        self._presigner = (session.client("s3", endpoint_url=public_endpoint_url, config=config)
                           if public_endpoint_url else self.client)

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"bad storage key {key!r}")
        return self.prefix + key

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError
        if not isinstance(exc, ClientError):
            return False
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("404", "NoSuchKey", "NotFound") or status == 404

    def put(self, key: str, data: bytes) -> None:
        # Content-addressed: writing the same key again writes the same bytes, and moves
        # Last-Modified on, so the orphan sweep sees a file in use again as fresh.
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               ContentType=_content_type(key))

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from None
            raise
        body = answer["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def _head(self, key: str) -> Mapping[str, Any]:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))   # gone already: fine

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key, or those under a folder-like `prefix` ("imports/")."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket}
        if self.prefix or prefix:
            kwargs["Prefix"] = self.prefix + prefix
        for page in paginator.paginate(**kwargs):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix):]

    def modified_at(self, key: str) -> datetime:
        """Naive UTC, like the database's times."""
        return _naive(self._head(key)["LastModified"])

    def now(self) -> datetime:
        """The store's clock (the Date of its answer), to compare `modified_at` with."""
        answer = self.client.head_bucket(Bucket=self.bucket)
        date = answer["ResponseMetadata"]["HTTPHeaders"]["date"]
        return _naive(parsedate_to_datetime(date))

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, seconds: int, *, content_type: str = "image/jpeg") -> str:
        """A link that reads this one object for `seconds`, no credentials needed."""
        return str(self._presigner.generate_presigned_url(
            "get_object", ExpiresIn=seconds,
            Params={"Bucket": self.bucket, "Key": self._key(key),
                    "ResponseContentType": content_type,
                    "ResponseCacheControl": "private, max-age=31536000, immutable"}))


def _content_type(key: str) -> str:
    if key.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if key.endswith(".pdf"):
        return "application/pdf"
    return "application/octet-stream"


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def from_config(config: Mapping[str, Any]) -> Storage:
    """The storage the settings choose (PATROL_STORAGE, PATROL_S3_*, PATROL_PHOTO_DIR)."""
    if config.get("STORAGE", "local") == "s3":
        if not config.get("S3_BUCKET"):
            raise RuntimeError("PATROL_STORAGE=s3 needs PATROL_S3_BUCKET")
        return S3Storage(bucket=config["S3_BUCKET"], prefix=config.get("S3_PREFIX") or "",
                         endpoint_url=config.get("S3_ENDPOINT_URL"),
                         region=config.get("S3_REGION"),
                         access_key_id=config.get("S3_ACCESS_KEY_ID"),
                         secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
                         addressing_style=config.get("S3_ADDRESSING_STYLE") or "auto",
                         public_endpoint_url=config.get("S3_PUBLIC_ENDPOINT_URL"))
    return LocalStorage(config["PHOTO_DIR"])

"""Where photo files live. A small interface so an object store can replace the disk."""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Protocol


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> Iterator[str]: ...
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

    def keys(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
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

"""Static files: versioned URLs a phone keeps for a year, compressed once.

`url_for("static", filename=…)` gains `?v=<digest of the file>`. A request that names the
file's current digest is answered `immutable` for a year, so a returning phone asks for
nothing; a deploy that changes a file changes its URL. Unversioned requests (the service
worker's shell list, old pages) are revalidated as before (ETag, 304).

Flask-Compress compresses each versioned file once per algorithm and keeps the result
(`COMPRESS_CACHE_*`); pages and other answers are compressed per request and never kept.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

from flask import Flask, request

YEAR = 365 * 24 * 3600
CACHED_FILES = 64             # our static text files are a handful; bound it anyway


def _digest(app: Flask, filename: str) -> str | None:
    """A short content digest of a static file, kept per (name, mtime, size)."""
    folder = Path(app.static_folder or "")
    path = (folder / filename).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        return None
    stat = path.stat()
    key = (filename, stat.st_mtime_ns, stat.st_size)
    known = app.extensions.setdefault("patrol.static_digests", {})
    if key not in known:
        known[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return known[key]


class CompressedStatic:
    """Flask-Compress's cache backend: keeps only versioned static files (keys made by
    `cache_key` below); every other answer passes through uncached."""

    def __init__(self, limit: int = CACHED_FILES):
        self.limit = limit
        self._data: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(";"):      # not a versioned static file
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.limit:
            self._data.popitem(last=False)


def cache_key(req) -> str:
    """The file and its version for a versioned static file, else "" (not kept)."""
    if req.endpoint == "static" and req.args.get("v"):
        return f"{req.path}?v={req.args['v']}"
    return ""


def configure(app: Flask) -> None:
    """Before Flask-Compress starts: its cache, for versioned static files only."""
    app.config.setdefault("COMPRESS_CACHE_BACKEND", CompressedStatic)
    app.config.setdefault("COMPRESS_CACHE_KEY", cache_key)


def init_app(app: Flask) -> None:
    @app.url_defaults
    def _version(endpoint, values):
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = _digest(app, values["filename"])
            if digest:
                values["v"] = digest

    # Registered after Flask-Compress's: runs before it (after_request runs in reverse).
    @app.after_request
    def _static_caching(resp):
        if request.endpoint != "static" or resp.status_code != 200:
            return resp
        filename = (request.view_args or {}).get("filename", "")
        version = request.args.get("v")
        if version and version == _digest(app, filename):
            resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
            # A body in memory (not a file stream), so Flask-Compress compresses it once
            # and keeps it; our static text files are small.
            resp.direct_passthrough = False
            resp.make_sequence()
        else:
            resp.headers["Cache-Control"] = "no-cache"
        return resp

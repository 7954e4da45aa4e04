"""Photo intake: decide the format by decoding, refuse bombs and broken files,
re-encode upright JPEGs with no EXIF, and store them content-addressed.

Pure functions over bytes (`process`) plus a thin storing step (`save_photo`).
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF from iPhones
    import pillow_heif
    pillow_heif.register_heif_opener()
    FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "HEIF")
except ImportError:  # pragma: no cover - pillow-heif is a hard dependency
    FORMATS = ("JPEG", "PNG", "WEBP")

MAX_PIXELS = 50_000_000
LONG_EDGE = 1600
THUMB_EDGE = 320
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Huffman tables made for the image (optimize) cost about 2 ms plus 30 µs per KB of coded
# data and save 28% of a smooth picture's bytes, but only 3-7% of a dense one's. A JPEG
# upload stored at its own size with more bytes per pixel than this (288 KB at 1600x1200)
# is stored without them: that keeps a 1600 px photo under 30 ms of CPU. Below it, and
# for every resized photo (its decode costs far more), the tables are made.
OPTIMIZE_UP_TO = 0.15


class PhotoRejected(Exception):
    """Bad upload. `code` is stable; the view turns it into the user's language."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Processed:
    full: bytes
    thumb: bytes
    width: int
    height: int
    taken_at: datetime | None


class _EofWatch(io.BytesIO):
    """Notices a decoder asking for bytes past the end of the file.

    WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES process-wide, which makes
    Pillow pad truncated images silently; this catches truncation regardless.
    """
    decoding = False
    starved = False

    def read(self, size=-1):
        data = super().read(size)
        if self.decoding and size != 0 and not data:
            self.starved = True
        return data


def _taken_at(im, tz) -> datetime | None:
    try:
        exif = im.getexif()
        raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
        if not raw:
            return None
        local = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        offset = exif.get_ifd(0x8769).get(0x9011)  # OffsetTimeOriginal
        if offset:
            sign = -1 if offset.startswith("-") else 1
            hours, minutes = offset.lstrip("+-").split(":")
            utc_offset = sign * timedelta(hours=int(hours), minutes=int(minutes))
            return local - utc_offset
        return local.replace(tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    except Exception:  # EXIF is untrusted and optional: a bad date is no date
        return None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        flat = Image.new("RGB", im.size, "white")
        flat.paste(im, mask=im.getchannel("A"))
        return flat
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB") if im.mode != "RGB" else im


def _encode(im: Image.Image, quality: int, icc, *, optimize: bool = True) -> bytes:
    """Baseline JPEG, 4:2:0 (Pillow's default below quality 95).

    Not progressive: that pass took half this pipeline's CPU for at most 3% fewer bytes,
    none on smooth pictures. `optimize` makes Huffman tables for this image: see
    OPTIMIZE_UP_TO (docs/benchmarks.md, "Photo pipeline CPU")."""
    out = io.BytesIO()
    # No exif= argument: the stored file carries no EXIF (no GPS, no serial). Pillow
    # copies the source's comment (a JPEG COM marker, a PNG "comment" text) unless told
    # otherwise: comment=b"" writes none, and a PNG comment over 64 KB cannot fail the save.
    im.save(out, "JPEG", quality=quality, optimize=optimize, icc_profile=icc or None,
            comment=b"")
    return out.getvalue()


def _shrink(im: Image.Image, edge: int) -> Image.Image:
    """A new image that fits in edge x edge, aspect kept: reduce() by the whole factor
    first (a box average over factor x factor pixels: cheap, and a fair low-pass for
    that step), then Lanczos over what is left, less than one step more."""
    scale = edge / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    factor = min(im.width // size[0], im.height // size[1])
    if factor > 1:
        im = im.reduce(factor)
    return im.resize(size, Image.Resampling.LANCZOS)


def process(data: bytes, *, max_bytes: int, draft: bool = True, tz: str = "Asia/Shanghai",
            long_edge: int = LONG_EDGE, thumb_edge: int = THUMB_EDGE) -> Processed:
    if not data:
        raise PhotoRejected("empty")
    if len(data) > max_bytes:
        raise PhotoRejected("too_large")
    src = _EofWatch(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(src, formats=FORMATS)
            if im.width * im.height > MAX_PIXELS:
                raise PhotoRejected("too_many_pixels")
            taken_at = _taken_at(im, tz)
            icc = im.info.get("icc_profile")
            source_format, source_pixels = im.format, im.width * im.height
            if draft and im.format == "JPEG" and max(im.size) > long_edge:
                # Ask with the image's own aspect ratio, or draft() won't reduce.
                s = long_edge / max(im.size)
                im.draft("RGB", (math.ceil(im.width * s), math.ceil(im.height * s)))
            src.decoding = True
            im.load()
            if src.starved:
                raise PhotoRejected("corrupt")
            src.decoding = False
            ImageOps.exif_transpose(im, in_place=True)  # no copy of the decoded image
            im = _to_rgb(im)
    except PhotoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected("too_many_pixels") from None
    except UnidentifiedImageError:
        raise PhotoRejected("not_image") from None
    except Exception:  # any decoder failure on untrusted bytes is a bad file, not a 500
        raise PhotoRejected("corrupt") from None
    # One decoded image, resized in place; the thumbnail is made from it (never from a
    # second decode or a copy of the full one).
    im.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    dense = (source_format == "JPEG" and im.width * im.height == source_pixels
             and len(data) > OPTIMIZE_UP_TO * source_pixels)
    full = _encode(im, 82, icc, optimize=not dense)
    thumb_im = _shrink(im, thumb_edge) if max(im.size) > thumb_edge else im
    thumb = _encode(thumb_im, 72, icc)
    return Processed(full, thumb, im.width, im.height, taken_at)


def keys_for(processed: Processed) -> tuple[str, str]:
    digest = hashlib.sha256(processed.full).hexdigest()
    return f"{digest[:2]}/{digest}.jpg", f"{digest[:2]}/{digest}_t.jpg"

"""QR codes for compound gates and printed lists."""
from __future__ import annotations

import functools
import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def compound_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/c/{token}"


def svg(data: str, box_size: int = 10) -> bytes:
    """Vector QR (stays sharp in PDFs)."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4,
                       image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(data)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def png(data: str, box_size: int = 10) -> bytes:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out, format="PNG")
    return out.getvalue()


def rects(matrix) -> list[list[int]]:
    """Dark modules as few rectangles [x, y, w, h]: horizontal runs, each grown
    downwards while the next row has the very same run."""
    out: list[list[int]] = []
    above: dict[tuple[int, int], list[int]] = {}   # run (start, end) → its rectangle
    for y, row in enumerate(matrix):
        runs, x, n = [], 0, len(row)
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                runs.append((start, x))
            else:
                x += 1
        current = {}
        for run in runs:
            rect = above.get(run)
            if rect is not None:
                rect[3] += 1
            else:
                rect = [run[0], y, run[1] - run[0], 1]
                out.append(rect)
            current[run] = rect
        above = current
    return out


@functools.lru_cache(maxsize=4096)
def svg_compact(data: str) -> bytes:
    """Vector QR as one path of merged rectangles: about a fifth of the path commands
    of `svg()`, which matters when a printed list carries hundreds of them (WeasyPrint
    draws SVG paths point by point). Same error correction and quiet zone."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    path = "".join(f"M{x} {y}h{w}v{h}h-{w}z" for x, y, w, h in rects(matrix))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {n} {n}" '
            f'width="{n}mm" height="{n}mm" shape-rendering="crispEdges">'
            f'<path d="{path}" fill="#000"/></svg>').encode()

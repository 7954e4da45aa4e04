"""Reading PDFs back with poppler-utils, for the poster and weekly-list tests."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

POPPLER = ("pdftoppm", "pdffonts", "pdfinfo", "pdftotext", "pdfimages")


def require_poppler():
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    assert not missing, f"poppler-utils missing ({', '.join(missing)}): apt-get install poppler-utils"


def run(*args, timeout=180) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          timeout=timeout).stdout


def write_pdf(pdf: bytes, tmp_path: Path, name: str) -> Path:
    assert pdf.startswith(b"%PDF-"), pdf[:40]
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    return path


def qr_texts(pdf_path: Path) -> list[list[str]]:
    """Decoded QR texts, one list per page, from 150 dpi PNG renderings (zxing-cpp)."""
    import zxingcpp
    from PIL import Image
    out_dir = pdf_path.with_suffix("")
    out_dir.mkdir()
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf_path), str(out_dir / "p")],
                   check=True, timeout=180)
    pngs = sorted(out_dir.glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert pngs, "pdftoppm produced no pages"
    pages = []
    for png in pngs:
        with Image.open(png) as im:
            found = zxingcpp.read_barcodes(im)
        pages.append([r.text for r in found if r.format == zxingcpp.BarcodeFormat.QRCode])
    return pages


def embedded_fonts(pdf_path: Path) -> dict[str, str]:
    """{font name: emb column} from pdffonts (read from the right: the type column has spaces)."""
    lines = run("pdffonts", str(pdf_path)).splitlines()
    assert lines[1].startswith("---"), lines[:2]
    return {line.split()[0]: line.split()[-5] for line in lines[2:] if len(line.split()) >= 7}


def glyph_shapes(pdf_path: Path, word: str, page: int = 1, dpi: int = 150) -> dict[str, bytes]:
    """The drawn shape of each character of `word` (a pdftotext word of full-width CJK
    characters, so one em-square each), read off a rasterised page: trimmed to its ink and
    scaled to 16×16 black/white. A repeated character keeps its first shape.

    Text extraction alone cannot show that Chinese is drawn: with a font that lacks the
    glyphs, pdftotext still reads the right characters while the page shows empty boxes,
    which all have the same shape."""
    import re

    from PIL import Image
    boxes = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                       + re.escape(word) + "</word>",
                       run("pdftotext", "-f", str(page), "-l", str(page), "-bbox", str(pdf_path), "-"))
    assert boxes, f"{word!r} not found on page {page}"
    x0, y0, x1, y1 = max((tuple(map(float, b)) for b in boxes), key=lambda b: b[3] - b[1])
    out = pdf_path.with_name(f"{pdf_path.stem}-glyphs-{page}")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-gray",
                    "-singlefile", "-png", str(pdf_path), str(out)], check=True, timeout=180)
    scale, step = dpi / 72, (x1 - x0) / len(word)
    shapes = {}
    with Image.open(f"{out}.png") as im:
        for i in range(len(word)):
            cell = im.crop((round((x0 + i * step) * scale), round(y0 * scale),
                            round((x0 + (i + 1) * step) * scale), round(y1 * scale)))
            ink = cell.point(lambda v: 255 if v < 128 else 0).getbbox()
            assert ink, f"nothing drawn for {word[i]!r}"
            shape = cell.crop(ink).resize((16, 16)).point(lambda v: 1 if v < 128 else 0)
            shapes.setdefault(word[i], shape.tobytes())
    return shapes


def distinct_shapes(shapes: dict[str, bytes], min_diff: float = 0.1) -> bool:
    """True when every two characters' shapes differ in at least `min_diff` of their
    pixels: real glyphs do, the empty boxes of a missing font do not."""
    shapes = list(shapes.values())
    for i, a in enumerate(shapes):
        for b in shapes[i + 1:]:
            if sum(p != q for p, q in zip(a, b, strict=False)) < min_diff * len(a):
                return False
    return True

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

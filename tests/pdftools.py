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

"""A4/A5 gate posters: compound name, QR code, one line of instruction."""
from __future__ import annotations

from collections.abc import Callable

from . import qr
from .pdf import document_from_html, render_pdf, write_documents

# A batch (565 posters after a district import) is laid out this many at a time, so a
# job can say how far it is (patrol/jobs/kinds.py).
CHUNK = 20


def _entries(compounds, base_url: str):
    resources, entries = {}, []
    for compound in compounds:
        url = qr.compound_url(base_url, compound.qr_token)
        name = f"qr-{compound.id}"
        resources[name] = (qr.svg(url), "image/svg+xml")
        entries.append({"compound": compound, "qr": f"patrol-res:{name}", "url": url})
    return resources, entries


def poster_pdf(compounds, base_url: str, size: str = "A4") -> bytes:
    resources, entries = _entries(compounds, base_url)
    return render_pdf("pdf/poster.html", resources=resources, entries=entries, size=size)


def poster_batch_pdf(compounds, base_url: str, size: str = "A4",
                     progress: Callable[[int, int], None] | None = None,
                     chunk: int | None = None) -> bytes:
    """The same PDF as poster_pdf, laid out CHUNK posters at a time; `progress(done,
    total)` after each chunk."""
    from flask import render_template
    compounds = list(compounds)
    chunk = chunk or CHUNK
    documents = []
    for start in range(0, len(compounds), chunk):
        resources, entries = _entries(compounds[start:start + chunk], base_url)
        html = render_template("pdf/poster.html", entries=entries, size=size)
        documents.append(document_from_html(html, resources))
        if progress:
            progress(min(start + chunk, len(compounds)), len(compounds))
    return write_documents(documents)

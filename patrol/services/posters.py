"""A4/A5 gate posters: compound name, QR code, one line of instruction."""
from __future__ import annotations

from . import qr
from .pdf import render_pdf


def poster_pdf(compounds, base_url: str, size: str = "A4") -> bytes:
    resources, entries = {}, []
    for compound in compounds:
        url = qr.compound_url(base_url, compound.qr_token)
        name = f"qr-{compound.id}"
        resources[name] = (qr.svg(url), "image/svg+xml")
        entries.append({"compound": compound, "qr": f"patrol-res:{name}", "url": url})
    return render_pdf("pdf/poster.html", resources=resources, entries=entries, size=size)

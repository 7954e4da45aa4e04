"""Render HTML to PDF with WeasyPrint, fetching nothing but what we hand it.

Resources are referenced as `patrol-res:<name>` and served from a dict given
by the caller; every other URL (file://, http://, data: …) is refused, and no
redirect is ever followed.
"""
from __future__ import annotations

import logging

from flask import render_template
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger(__name__)
SCHEME = "patrol-res:"


class FetchRefused(Exception):
    pass


class SafeFetcher(URLFetcher):
    def __init__(self, resources: dict[str, tuple[bytes, str]] | None = None):
        super().__init__(allowed_protocols=(), allow_redirects=False)
        self.resources = resources or {}
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        if url.startswith(SCHEME) and url[len(SCHEME):] in self.resources:
            body, mime = self.resources[url[len(SCHEME):]]
            return URLFetcherResponse(url, body=body, headers={"Content-Type": mime})
        self.refused.append(url[:100])
        log.warning("PDF renderer refused to fetch %.100s", url)
        raise FetchRefused(url[:100])


def document_from_html(html: str, resources=None, fetcher: SafeFetcher | None = None, *,
                       stylesheets: list[str] | None = None):
    """Lay out `html` with a SafeFetcher; returns a WeasyPrint Document.
    `stylesheets`: extra CSS text from our own code (never user input), after the page's."""
    fetcher = fetcher or SafeFetcher(resources)
    extra = [CSS(string=css, url_fetcher=fetcher) for css in stylesheets or ()]
    return HTML(string=html, base_url=f"{SCHEME}/", url_fetcher=fetcher).render(
        stylesheets=extra or None)


def write_documents(documents) -> bytes:
    """One PDF from one or more laid-out documents (page numbers stay per document).

    WeasyPrint's defaults are the fast ones here: JPEG images are embedded as they
    are (DCTDecode, not decoded, re-encoded or deflated) as long as neither of the
    render options `optimize_images` and `jpeg_quality` is set, so neither is."""
    documents = list(documents)
    if len(documents) == 1:
        return documents[0].write_pdf()
    pages = [page for doc in documents for page in doc.pages]
    return documents[0].copy(pages).write_pdf()


def render_pdf(template: str, resources=None, **context) -> bytes:
    html = render_template(template, **context)
    return write_documents([document_from_html(html, resources)])

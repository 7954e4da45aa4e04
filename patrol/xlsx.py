"""Writing XLSX: every workbook Patrol makes (ledgers, the monthly ledger, service hours)
goes through `write`, on rustpy-xlsxwriter (a binding of rust_xlsxwriter, the compiled
sibling of XlsxWriter by the same author).

Why compiled: XlsxWriter spends about 11 µs a cell in Python, so the 100,000-item ledger
with its history (4.4 million cells) took 54 s; this writes the same file about 3× faster
in the same constant memory (bench/export.py, docs/benchmarks.md). Reading stays openpyxl.

A sheet is: lines above the table (the export's filter and time), a bold header row,
frozen, with an autofilter, typed cells (numbers, Excel dates with a number format, text
that is never parsed as a formula or a link), column widths, and an optional bold footer.
Rows stream: they are consumed as they are written, never held.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rustpy_xlsxwriter import Format, write_worksheets

HEADER_FILL = "#EEEEEE"
# Excel's limit for one cell's text; the writer refuses a longer string (the whole file
# fails), so callers cut text to it (ledger.cells' text_max).
TEXT_MAX = 32_767


@dataclass
class Sheet:
    name: str
    titles: Sequence[str]
    rows: Iterable[Sequence[Any]]          # values in the titles' order
    widths: Sequence[float] = ()
    # Excel number formats by column ("yyyy-mm-dd hh:mm", "0.00"); "" for none.
    formats: Sequence[str] = ()
    meta: Sequence[str] = ()               # lines written above the header
    footer: Sequence[Any] | None = None    # a bold last row (a total), as wide as the titles
    bold_columns: Sequence[int] = field(default_factory=tuple)
    table: bool = True                     # frozen header row and an autofilter


def _records(sheet: Sheet) -> Iterator[dict[str, Any]]:
    titles = list(sheet.titles)
    empty = True
    for values in sheet.rows:
        empty = False
        yield dict(zip(titles, values, strict=True))
    if sheet.footer is not None:
        yield dict(zip(titles, sheet.footer, strict=True))
    elif empty:
        # The writer takes the header from the first record: with no rows, a record of
        # blanks still gives the header (and writes no cells).
        yield dict.fromkeys(titles)


def write(out: BinaryIO, sheets: Sequence[Sheet]) -> None:
    """Write `sheets` to the binary file `out`."""
    head = Format().set_bold().set_background_color(HEADER_FILL).set_border("thin")
    bold = Format().set_bold()
    # Each option is a mapping by sheet name (the binding's stubs type them loosely).
    entries: list[Any] = []
    widths: dict[str, Any] = {}
    formats: dict[str, Any] = {}
    merges: dict[str, Any] = {}
    header_rows: dict[str, int] = {}
    header_formats: dict[str, Format] = {}
    filters: dict[str, bool] = {}
    freeze: dict[str, dict[str, int]] = {}
    row_formats: dict[str, dict[int, Format]] = {}
    for sheet in sheets:
        n = len(sheet.titles)
        header = len(sheet.meta)
        entries.append((sheet.name, _records(sheet)))
        if sheet.widths:
            widths[sheet.name] = [float(w) for w in sheet.widths]
        column_formats = []
        for i in range(n):
            f = Format()
            if i < len(sheet.formats) and sheet.formats[i]:
                f = f.set_num_format(sheet.formats[i])
            if i in sheet.bold_columns:
                f = f.set_bold()
            column_formats.append(f)
        formats[sheet.name] = column_formats
        header_rows[sheet.name] = header
        header_formats[sheet.name] = head
        if sheet.meta:
            # A merged cell per line, so a long filter reads across the table.
            merges[sheet.name] = [(r, 0, r, max(n - 1, 1), line)
                                  for r, line in enumerate(sheet.meta)]
        if sheet.table:
            filters[sheet.name] = True
            freeze[sheet.name] = {"row": header + 1, "col": 0}
        if sheet.footer is not None:
            rows = sheet.rows if isinstance(sheet.rows, Sequence) else None
            if rows is None:
                raise TypeError("a sheet with a footer needs its rows as a list")
            row_formats[sheet.name] = {header + 1 + len(rows): bold}
    write_worksheets(entries, out, column_widths=widths, column_formats=formats,
                     header_row=header_rows, header_format=header_formats,
                     merge_ranges=merges, autofilter=filters, freeze_panes=freeze,
                     row_formats=row_formats)

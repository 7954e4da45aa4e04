"""An uploaded workbook as rows, or a refusal in plain Chinese.

Accepted: .xlsx (openpyxl, read-only) and .csv in UTF-8 (with or without BOM) or
GB18030 (what a Chinese Excel saves by default). Refused before any parsing: files that
are not a zip workbook, macro workbooks (.xlsm, vbaProject.bin), archives that expand
beyond a limit (zip bombs) and cells with formulas (their value is whatever Excel last
computed, or nothing).
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field

from . import normalise
from .sheets import BY_NAME, SHEETS, Sheet

MAX_UNPACKED = 200 * 1024 * 1024     # bytes inside the zip, all parts together
MAX_RATIO = 200                      # unpacked / packed, per part
MAX_ROWS = 200_000                   # per sheet
HEADER_SEARCH = 10                   # title rows above the header, merged or not


class Refused(Exception):
    """The file cannot be imported at all; the message is for the user (Chinese)."""


@dataclass
class Table:
    sheet: Sheet
    header_row: int
    columns: dict[str, int]                      # column name → 0-based index
    # (row number, values of `used` in order): tuples, as a city's sheet has 100,000 rows
    rows: list[tuple[int, tuple]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # columns we do not use

    @property
    def used(self) -> list[str]:
        return [c for c in self.sheet.columns if c in self.columns]

    def cells(self):
        """(row number, {column: value}) for each row, made one at a time."""
        used = self.used
        for number, values in self.rows:
            yield number, dict(zip(used, values, strict=True))


def read(data: bytes, filename: str) -> dict[str, Table]:
    """Tables by sheet name. Sheets not in the template are ignored."""
    name = (filename or "").lower()
    if name.endswith((".xlsm", ".xltm", ".xlam")):
        raise Refused("不接受带宏的工作簿（.xlsm）。请另存为普通的 .xlsx 后再导入。")
    if name.endswith(".csv"):
        return _read_csv(data)
    if name.endswith(".xls"):
        raise Refused("不支持旧版 .xls 文件。请在 Excel 中另存为 .xlsx 或 CSV 后再导入。")
    return _read_xlsx(data)


def _check_zip(data: bytes):
    if not data.startswith(b"PK"):
        raise Refused("这不是 Excel 工作簿（.xlsx）或 CSV 文件。")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise Refused("文件已损坏，无法作为 Excel 工作簿打开。") from None
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise Refused("这不是 Excel 工作簿（.xlsx）或 CSV 文件。")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise Refused("不接受带宏的工作簿。请另存为普通的 .xlsx 后再导入。")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED or any(i.compress_size and i.file_size / i.compress_size > MAX_RATIO
                                   and i.file_size > 10 * 1024 * 1024 for i in infos):
        raise Refused("工作簿解压后过大，可能已损坏或不是正常的表格。请只保留需要导入的表。")


def _read_xlsx(data: bytes) -> dict[str, Table]:
    _check_zip(data)
    from openpyxl import load_workbook
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds for a broken part
        raise Refused("文件已损坏，无法作为 Excel 工作簿打开。") from None
    tables = {}
    try:
        for ws in book.worksheets:
            sheet = BY_NAME.get(normalise.text(ws.title))
            if sheet is None:
                continue
            tables[sheet.name] = _table(sheet, _cells(ws, sheet.name))
    finally:
        book.close()
    if not tables:
        raise Refused("没有找到可导入的工作表。工作表名须为：" + "、".join(s.name for s in SHEETS)
                      + "。请从「下载模板」开始。")
    return tables


def _cells(ws, sheet_name):
    for number, row in enumerate(ws.iter_rows(), start=1):
        if number > MAX_ROWS + HEADER_SEARCH:
            raise Refused(f"「{sheet_name}」超过 {MAX_ROWS} 行，请分成几个文件导入。")
        values = []
        for cell in row:
            if getattr(cell, "data_type", None) == "f":
                column = getattr(cell, "column_letter", "?")
                raise Refused(f"「{sheet_name}」第 {number} 行 {column} 列是公式。请把公式复制后"
                              f"「选择性粘贴为数值」再导入。")
            values.append(cell.value)
        yield number, values


def _read_csv(data: bytes) -> dict[str, Table]:
    if b"\x00" in data[:4096]:
        raise Refused("这不是 CSV 文本文件。")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            content = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise Refused("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV。")
    rows = list(csv.reader(io.StringIO(content)))
    if len(rows) > MAX_ROWS + HEADER_SEARCH:
        raise Refused(f"文件超过 {MAX_ROWS} 行，请分成几个文件导入。")
    numbered = list(enumerate(rows, start=1))
    # One sheet per CSV: the one whose required columns its header carries (most first).
    for sheet in sorted(SHEETS, key=lambda s: -len(s.required)):
        if _find_header(sheet, numbered) is not None:
            return {sheet.name: _table(sheet, numbered)}
    raise Refused("没有找到表头。CSV 的第一行（或标题行之下）应是模板中某张表的列名，例如："
                  + "、".join(SHEETS[2].required) + "。")


def _find_header(sheet: Sheet, rows):
    for number, values in rows[:HEADER_SEARCH]:
        names = [normalise.text(v) for v in values]
        if all(c in names for c in sheet.required):
            return number, names
    return None


def _table(sheet: Sheet, rows) -> Table:
    rows = iter(rows)
    head = []
    for number, values in rows:       # the header: within the first rows, titles above it
        head.append((number, values))
        if _find_header(sheet, [(number, values)]) is not None:
            break
        if len(head) >= HEADER_SEARCH:
            missing = "、".join(sheet.required)
            raise Refused(f"「{sheet.name}」没有找到表头（须含：{missing}）。")
    else:
        raise Refused(f"「{sheet.name}」没有找到表头（须含：{'、'.join(sheet.required)}）。")
    header_row, names = head[-1][0], [normalise.text(v) for v in head[-1][1]]
    columns = {}
    for index, name in enumerate(names):
        if name and name not in columns:
            columns[name] = index
    table = Table(sheet, header_row, columns,
                  extra=[n for n in columns if n not in sheet.columns])
    indexes = [columns[c] for c in table.used]
    for number, values in rows:
        cells = tuple(values[i] if i < len(values) else None for i in indexes)
        if all(normalise.text(v) == "" for v in cells):
            continue   # empty rows, and rows of spaces
        table.rows.append((number, cells))
    return table

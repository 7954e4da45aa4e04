"""patrol/xlsx.py, read back with openpyxl: the layout every workbook Patrol writes has."""
from __future__ import annotations

import io
from datetime import datetime

import openpyxl

from patrol.xlsx import Sheet, write


def _book(*sheets: Sheet) -> openpyxl.Workbook:
    out = io.BytesIO()
    write(out, list(sheets))
    out.seek(0)
    return openpyxl.load_workbook(out)


def test_lines_on_top_then_a_frozen_filtered_header_and_typed_cells():
    rows = [(1, "=1+1", datetime(2026, 11, 3, 9, 30)), (2, "普通", None)]
    ws = _book(Sheet("表", ("编号", "说明", "时间"), iter(rows), widths=(8, 30, 17),
                     formats=("", "", "yyyy-mm-dd hh:mm"), meta=("筛选：全部", "导出时间：x")))["表"]
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "筛选：全部" and values[1][0] == "导出时间：x"
    assert values[2] == ("编号", "说明", "时间")
    assert values[3] == (1, "=1+1", datetime(2026, 11, 3, 9, 30)) and values[4][:2] == (2, "普通")
    # Text is never parsed as a formula; dates are Excel dates with their format.
    assert ws["B4"].data_type == "s" and ws["C4"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["A3"].font.b and ws.freeze_panes == "A4" and ws.auto_filter.ref == "A3:C5"
    assert ws.column_dimensions["B"].width > ws.column_dimensions["A"].width


def test_no_rows_still_has_its_header_and_a_footer_is_bold():
    book = _book(Sheet("空", ("甲", "乙"), iter(())),
                 Sheet("合计", ("名", "数"), [("a", 1.5), ("b", 2)], formats=("", "0.00"),
                       footer=("合计", 3.5)))
    assert list(book["空"].iter_rows(values_only=True)) == [("甲", "乙")]
    total = book["合计"]
    assert [c.value for c in total[4]] == ["合计", 3.5] and total["A4"].font.b

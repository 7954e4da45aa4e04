"""The import template workbook: a sheet per kind, header in row 1, an example in row 2,
and a notes sheet. The example row is skipped on import (if left as it is)."""
from __future__ import annotations

import io

from .sheets import SHEETS


def template_bytes() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    book = Workbook()
    notes = book.active
    notes.title = "说明"
    notes.append(["小区巡查 · 区域数据导入模板"])
    notes["A1"].font = Font(bold=True, size=14)
    notes.append(["每张表第 1 行是列名（不要改名），第 2 行是示例（灰色，导入时跳过，可删除）。"])
    notes.append(["先「试导入」：会一次列出所有错误（表、行、列），不写入任何数据。没有错误后再正式导入。"])
    notes.append(["同一文件再次导入不会改变任何数据；文件中没有的行不会被删除。"])
    notes.append(["可保存为 .xlsx，或每张表单独另存为 CSV（UTF-8 或 GBK 编码均可）。"])
    notes.append([])
    for sheet in SHEETS:
        notes.append([sheet.name, "必填列：" + "、".join(sheet.required)
                      + ("；可选列：" + "、".join(sheet.optional) if sheet.optional else ""),
                      sheet.note])
    notes.column_dimensions["A"].width = 14
    notes.column_dimensions["B"].width = 70
    notes.column_dimensions["C"].width = 70
    grey = Font(color="808080", italic=True)
    head = PatternFill("solid", fgColor="DDEBF7")
    for sheet in SHEETS:
        ws = book.create_sheet(sheet.name)
        ws.append(list(sheet.columns))
        ws.append(list(sheet.example))
        for cell in ws[1]:
            cell.font, cell.fill = Font(bold=True), head
        for cell in ws[2]:
            cell.font = grey
            cell.number_format = "@"   # text: phone numbers keep their digits
        for index, name in enumerate(sheet.columns, start=1):
            ws.column_dimensions[ws.cell(1, index).column_letter].width = max(12, len(name) * 3)
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

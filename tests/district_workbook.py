"""A messy district workbook, as a district office would bring it (tests and bench/import.py).

`district(compounds=565, streets=6, communities=40, companies=30, volunteers=800)` gives a
workbook with every kind of mess real sheets carry: full-width letters, digits and
spaces, trailing spaces, phone numbers with +86, spaces and dashes or stored as numbers,
coordinates stored as text, numbers stored as text, "3号楼" next to "3栋", empty rows, a
merged title row above a header, the template's example row left in, and the same
compound name in two communities. `plant_errors=True` adds the twelve errors of
PLANTED, each at a known (sheet, row).
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

from openpyxl import Workbook

from patrol.importer.sheets import BY_NAME

FULL = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass
class District:
    data: bytes
    counts: dict
    planted: list = field(default_factory=list)   # (sheet, row, column)


PLANTED = [
    ("物业公司", "联系电话", "a phone number that is not one"),
    ("物业公司", "名称", "a duplicate row"),
    ("小区", "物业公司", "an unknown company"),
    ("小区", "社区", "a compound whose community is not in its street"),
    ("小区", "纬度", "a latitude that is not a number"),
    ("小区", "经度", "a longitude out of range"),
    ("小区", "小区名称", "an empty compound name"),
    ("楼栋", "小区名称", "a building of a compound that does not exist"),
    ("志愿者", "手机号", "a bad phone number"),
    ("志愿者", "社区", "an unknown community"),
    ("账号", "角色", "an unknown role"),
    ("账号", "所属", "an unknown company"),
]


class _Sheet:
    def __init__(self, book, name, title=None):
        self.ws = book.create_sheet(name)
        self.row = 0
        if title:   # a merged title row above the header, as offices print them
            self.append([title])
            self.ws.merge_cells(start_row=1, start_column=1, end_row=1,
                                end_column=len(BY_NAME[name].columns))
        self.append(list(BY_NAME[name].columns))

    def append(self, values):
        self.ws.append(values)
        self.row += 1
        return self.row


def district(compounds=565, streets=6, communities=40, companies=30, volunteers=800,
             buildings_per=(6, 16), plant_errors=False, seed=565) -> District:
    rnd = random.Random(seed)
    book = Workbook()
    book.remove(book.active)
    planted = []

    def plant(sheet, column, row):
        planted.append((sheet, row, column))

    stems = ("和平", "建设", "东风", "红旗", "友谊", "解放", "胜利", "团结", "光明", "新华")
    street_names = [f"{stems[i % 10]}{i // 10 or ''}街道" for i in range(streets)]
    community_names = [f"{rnd.choice('金银翠桂松柏桃李')}{n}社区" for n in range(communities)]
    if communities > 1 and streets > 1:   # one name in two streets: parent + name is the key
        community_names[1] = community_names[0]
    places = [(street_names[i % streets], name) for i, name in enumerate(community_names)]
    sheet = _Sheet(book, "街道社区")
    for street, name in places:
        sheet.append([street + "  ", name.translate(FULL)])   # trailing spaces, full-width digits
        if rnd.random() < 0.1:
            sheet.append([None, "   "])                       # an empty row, spaces only

    sheet = _Sheet(book, "物业公司")
    company_names = [f"第{n}物业服务有限公司" for n in range(companies)]
    for n, name in enumerate(company_names):
        phone = [f"0731-5555{n:04d}", f"+86 138 {n:04d} 0000", 13900000000 + n][n % 3]
        sheet.append([name, phone, f"联系人{n}", None])
    if plant_errors:
        plant("物业公司", "联系电话", sheet.append(["错号物业有限公司", "12345", None, None]))
        plant("物业公司", "名称", sheet.append([company_names[0], "0731-55550000", "联系人0", None]))

    sheet = _Sheet(book, "小区", title="本区小区名单（2026年）")
    sheet.append(list(BY_NAME["小区"].example))   # the template's example, left in: skipped
    compound_rows = []
    for n in range(compounds):
        street, community = places[n % communities]
        twin = n == 1 and communities > 1 and streets > 1
        name = "幸福小区" if n == 0 or twin else f"小区{n:04d}"   # one name, two communities
        lat, lon = 27.8 + rnd.random() / 10, 112.9 + rnd.random() / 10
        row = [street, community, name, f"某某路{n}号  ", company_names[n % companies],
               f"{lat:.5f}", lon, "150" if n % 2 else 200]   # coordinates and numbers as text
        if n % 7 == 0:
            row[2] = name.translate(FULL) if name.startswith("小区") else name
        sheet.append(row)
        compound_rows.append((street, community, name))
    if plant_errors:
        plant("小区", "物业公司", sheet.append([street_names[0], places[0][1], "错误小区甲", "路1号",
                                             "不存在的物业公司", None, None, None]))
        plant("小区", "社区", sheet.append([street_names[1], places[0][1] + "X", "错误小区乙",
                                           "路2号", company_names[0], None, None, None]))
        plant("小区", "纬度", sheet.append([street_names[0], places[0][1], "错误小区丙", "路3号",
                                           company_names[0], "北纬27度", 112.9, 100]))
        plant("小区", "经度", sheet.append([street_names[0], places[0][1], "错误小区丁", "路4号",
                                           company_names[0], 27.8, 212.9, 100]))
        plant("小区", "小区名称", sheet.append([street_names[0], places[0][1], "  ", "路5号",
                                             company_names[0], None, None, None]))

    sheet = _Sheet(book, "楼栋")
    sheet.ws.cell(1, 4, "街道")   # an extra column the template allows: disambiguates
    building_count = 0
    for street, community, name in compound_rows:
        count = rnd.randint(*buildings_per)
        for b in range(1, count + 1):
            label = b if b % 5 == 0 else (f"{b}号楼" if b % 2 else f"{b}栋")   # numbers as numbers
            sheet.append([community, name, label, street])
            building_count += 1
    if plant_errors:
        plant("楼栋", "小区名称", sheet.append([places[0][1], "不存在的小区", "1栋", places[0][0]]))

    sheet = _Sheet(book, "志愿者")
    sheet.ws.cell(1, 6, "街道")
    titles = ["片长", "组长", "邻长", "红色管家", "和事佬", None]
    for n in range(volunteers):
        street, community = places[n % communities]
        digits = f"1{3 + n % 6}{n:09d}"
        phone = [digits, f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}", int(digits),
                 digits.translate(FULL), f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"][n % 5]
        sheet.append([f"志愿者{n}", phone, community, f"{community}巡查{n % 3 + 1}队",
                      titles[n % len(titles)], street])
    if plant_errors:
        plant("志愿者", "手机号", sheet.append(["错号志愿者", "1380013800", places[0][1], "一队",
                                              "片长", places[0][0]]))
        plant("志愿者", "社区", sheet.append(["无社区志愿者", "13999999999", "不存在的社区", "一队",
                                            "片长", None]))

    sheet = _Sheet(book, "账号")
    accounts = 0
    for n in range(min(companies, 10)):
        sheet.append([f"经理{n}", f"mgr{n}", "物业", company_names[n]])
        accounts += 1
    for n, (_street, community) in enumerate(places[2:12]):
        sheet.append([f"主任{n}", f"staff{n}", "社区", community])
        accounts += 1
    if plant_errors:
        plant("账号", "角色", sheet.append(["某人", "someone", "书记", places[-1][1]]))
        plant("账号", "所属", sheet.append(["某经理", "mgrx", "物业", "不存在的物业公司"]))

    out = io.BytesIO()
    book.save(out)
    counts = {"streets": streets, "communities": communities, "companies": companies,
              "compounds": compounds, "buildings": building_count, "volunteers": volunteers,
              "accounts": accounts, "teams": len({(p, n % 3) for n in range(volunteers)
                                                  for p in [places[n % communities]]})}
    return District(out.getvalue(), counts, planted)

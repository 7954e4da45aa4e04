"""The import template's sheets: their Chinese names and columns."""
from __future__ import annotations

from dataclasses import dataclass

# Row 2 of each template sheet is an example; its first cell starts with this, and any row
# that does is skipped on import (so a real 和平社区 is never mistaken for the example).
EXAMPLE = "示例："


@dataclass(frozen=True)
class Sheet:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    example: tuple[str, ...] = ()
    note: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SHEETS = (
    Sheet("街道社区", ("街道", "社区"), example=(EXAMPLE + "和平街道", "和平社区"),
          note="每行一个社区及其所属街道。"),
    Sheet("物业公司", ("名称", "联系电话"), ("联系人", "统一社会信用代码"),
          example=(EXAMPLE + "宏远物业服务有限公司", "0731-5555-1001", "李经理", "91430300MA4L000000"),
          note="公司名称在全区唯一。"),
    Sheet("小区", ("街道", "社区", "小区名称", "地址", "物业公司", "纬度", "经度", "范围(米)"),
          example=(EXAMPLE + "和平街道", "和平社区", "金桂园", "岳塘区建设路12号", "宏远物业服务有限公司",
                   "27.857", "112.951", "150"),
          note="小区名称在所属社区内唯一；物业公司须在「物业公司」表中或已在系统中；"
               "纬度、经度、范围可留空。"),
    Sheet("楼栋", ("社区", "小区名称", "楼栋"), ("街道",), example=(EXAMPLE + "和平社区", "金桂园", "1栋"),
          note="「3号楼」和「3栋」按原样保存，重新导入时视为同一栋；「1-12栋」一次添加 12 栋。"
               "不同街道有同名社区时，请填「街道」列。"),
    Sheet("志愿者", ("姓名", "手机号", "社区", "队伍", "职务"), ("街道",),
          example=(EXAMPLE + "刘阿姨", "13800138000", "和平社区", "和平社区第一巡查队", "片长"),
          note="以手机号识别同一位志愿者；队伍不存在时自动创建。不同街道有同名社区时，请填「街道」列。"),
    Sheet("账号", ("姓名", "用户名", "角色", "所属"),
          example=(EXAMPLE + "王主任", "wang", "社区", "和平社区"),
          note="角色：社区（所属填社区）、物业（所属填物业公司）、业委会（所属填小区）。"
               "密码不导入：导入后由管理员重设。"),
)
BY_NAME = {s.name: s for s in SHEETS}

"""Vocabulary for realistic demo data: Anhui and other cities, names, plates, VINs.

Kept apart from the generator so the generator reads as logic, not as word lists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    province: str
    name: str
    area_code: str  # with trunk 0
    plate: str  # province character + letter
    region: str  # the regional office that serves it
    postcode: str


CITIES = (
    City("安徽", "合肥", "0551", "皖A", "华东", "230000"),
    City("安徽", "芜湖", "0553", "皖B", "华东", "241000"),
    City("安徽", "蚌埠", "0552", "皖C", "华东", "233000"),
    City("安徽", "淮南", "0554", "皖D", "华东", "232000"),
    City("安徽", "马鞍山", "0555", "皖E", "华东", "243000"),
    City("安徽", "安庆", "0556", "皖H", "华东", "246000"),
    City("安徽", "黄山", "0559", "皖J", "华东", "245000"),
    City("安徽", "阜阳", "0558", "皖K", "华东", "236000"),
    City("安徽", "宿州", "0557", "皖L", "华东", "234000"),
    City("安徽", "滁州", "0550", "皖M", "华东", "239000"),
    City("安徽", "六安", "0564", "皖N", "华东", "237000"),
    City("安徽", "亳州", "0558", "皖S", "华东", "236800"),
    City("北京", "北京", "010", "京A", "华北", "100000"),
    City("上海", "上海", "021", "沪A", "华东", "200000"),
    City("广东", "广州", "020", "粤A", "华南", "510000"),
    City("江苏", "南京", "025", "苏A", "华东", "210000"),
    City("河南", "郑州", "0371", "豫A", "华中", "450000"),
    City("湖北", "武汉", "027", "鄂A", "华中", "430000"),
    City("山东", "济南", "0531", "鲁A", "华北", "250000"),
    City("浙江", "杭州", "0571", "浙A", "华东", "310000"),
    City("四川", "成都", "028", "川A", "西南", "610000"),
    City("陕西", "西安", "029", "陕A", "西北", "710000"),
)

SURNAMES = (
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
    "郭",
    "何",
    "高",
    "林",
    "罗",
    "郑",
    "梁",
    "谢",
    "宋",
    "唐",
    "许",
    "韩",
    "冯",
    "邓",
    "曹",
    "彭",
    "曾",
    "肖",
    "田",
    "董",
    "袁",
    "潘",
    "于",
    "蒋",
    "蔡",
    "余",
    "杜",
    "叶",
    "程",
    "苏",
    "魏",
    "吕",
    "丁",
    "任",
    "沈",
    "姚",
    "卢",
    "姜",
    "崔",
    "钟",
    "谭",
    "陆",
    "汪",
    "范",
    "金",
)
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "建国",
    "志强",
    "海燕",
    "文",
    "辉",
    "力",
    "鹏",
    "宇",
    "浩",
    "晨",
    "俊",
    "峰",
    "斌",
    "玉兰",
    "红梅",
    "春生",
    "德胜",
    "三",
)
BRANDS = (
    "顺达",
    "宏远",
    "恒通",
    "金桥",
    "华运",
    "安泰",
    "通力",
    "鑫源",
    "远航",
    "中联",
    "长江",
    "新兴",
    "永昌",
    "盛世",
    "天成",
    "瑞丰",
    "江淮",
    "皖通",
    "大地",
    "宏图",
    "万里",
    "诚信",
)
TRADES = (
    ("物流", "物流运输"),
    ("运输", "物流运输"),
    ("环卫", "环卫"),
    ("市政工程", "市政工程"),
    ("消防设备", "消防"),
    ("建设", "建筑"),
    ("冷链", "冷链"),
    ("危化品运输", "危化品运输"),
    ("渣土运输", "建筑"),
    ("汽车租赁", "租赁"),
)
COMPANY_SUFFIXES = ("有限公司", "有限责任公司", "集团有限公司", "股份有限公司")
STREETS = ("长江路", "淮河路", "黄山路", "人民路", "解放路", "建设大道", "工业园路", "科技大道")
MODELS = (
    ("江淮 HFC5180XLC 冷藏车", "HFC1180P3K1A50S"),
    ("江淮 HFC5160GSS 洒水车", "HFC1160P3K1A47S"),
    ("江淮 HFC5180ZYS 压缩式垃圾车", "HFC1180P3K2A53S"),
    ("江淮 HFC5250JSQ 随车起重运输车", "HFC1251P1K4D54S"),
    ("江淮 HFC5251GJB 混凝土搅拌运输车", "HFC3251P1K4E38S"),
    ("江淮 HFC5160GXFSG 水罐消防车", "HFC1161P3K1A47S"),
    ("江淮 HFC5120XRQ 易燃气体厢式运输车", "HFC1120P91K1C6S"),
    ("江淮 HFC5100JGK 高空作业车", "HFC1100P91K1C4S"),
    ("江淮 HFC5080TQZ 清障车", "HFC1080P71K1C2S"),
)
CLASSIFICATIONS = ("A类客户", "B类客户", "C类客户", "潜在客户")
DEPARTMENTS = ("车队", "采购部", "设备部", "总经理办公室", "安全部", "财务部")
TITLES = ("车队长", "采购经理", "设备主管", "总经理", "安全员", "驾驶员", "调度")
DECISION_ROLES = ("决策者", "影响者", "使用者", "采购者")
INTERESTS = ("钓鱼", "篮球", "书法", "茶艺", "摄影", "登山", "象棋")
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "177",
    "180",
    "181",
    "182",
    "183",
    "186",
    "187",
    "188",
    "189",
    "199",
)
# ISO 3779 VIN alphabet and weights for the check digit in position 9 (also GB 16735).
VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def vin_check_digit(vin: str) -> str:
    total = sum(VIN_VALUES[ch] * w for ch, w in zip(vin, VIN_WEIGHTS, strict=True))
    rest = total % 11
    return "X" if rest == 10 else str(rest)

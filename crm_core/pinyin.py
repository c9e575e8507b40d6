"""Pinyin keys for search: ``full_pinyin("张三") == "zhangsan"``, ``initials("张三") == "zs"``.

Built on ``pypinyin`` (``Style.NORMAL``: lower case, no tones, ``ü`` written ``v``).

* Han characters become toneless pinyin, exactly as ``lazy_pinyin`` reads them. A run of
  Han characters is converted character by character from an unbounded per-character
  cache unless it contains a heteronym *and* a dictionary phrase; only then does it go
  through pypinyin's phrase segmentation (``重庆`` -> ``chongqing``, ``行长`` ->
  ``hangzhang``), cached per run. (Phrases made only of single-reading characters
  never change a reading, checked over the whole phrase dictionary.)
* ASCII letters and digits (full-width ones are folded to ASCII) are kept, lower-cased.
  Every other character (spaces, punctuation, symbols) is dropped but separates words.
* ``is_person_name=True`` reads a leading surname with its surname reading, which
  pypinyin has no mode for (checked up to 0.55: no surname style or option), so a
  table of surnames whose reading differs from the everyday one is kept here:
  ``单`` shan, ``曾`` zeng, ``解`` xie, ``仇`` qiu, ``尉迟`` yuchi, ...
* ``initials`` takes the first letter of every pinyin syllable and of every ASCII
  letter run, and keeps ASCII digit runs whole: ``"瑞风S3"`` -> ``"rfs3"``,
  ``"JAC 4S店"`` -> ``"j4sd"``.

Both functions share one bounded whole-string cache, since seeding calls them with the
same names over and over.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import Final

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT

__all__ = ["COMPOUND_SURNAMES", "SURNAMES", "full_pinyin", "initials"]

# Surnames read differently from the character's default reading (plus a few where
# pypinyin's default is already right but the character is a common heteronym).
SURNAMES: Final[dict[str, str]] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "黑": "he",
    "乐": "yue",
    "缪": "miao",
    "种": "chong",
    "覃": "qin",
    "翟": "zhai",
    "繁": "po",
    "员": "yun",
    "召": "shao",
    "秘": "bi",
    "隗": "wei",
    "句": "gou",
    "薄": "bo",
    "尉": "wei",
    "折": "she",
    "都": "du",
    "六": "lu",
    "能": "nai",
    "粘": "nian",
    "祭": "zhai",
    "长": "chang",
    "重": "chong",
    "朝": "chao",
    "华": "hua",
    "任": "ren",
    "纪": "ji",
    "过": "guo",
    "柏": "bai",
    "藏": "zang",
    "那": "na",
    "燕": "yan",
    "洗": "xian",
    "相": "xiang",
    "应": "ying",
    "殷": "yin",
    "石": "shi",
    "角": "jue",
    "沈": "shen",
    "贾": "jia",
    "万": "wan",
    "便": "pian",
    "卜": "bu",
    "蕃": "pi",
    "牟": "mou",
    "褚": "chu",
    "訾": "zi",
    "颉": "xie",
    "阚": "kan",
    "宿": "su",
    "占": "zhan",
    "车": "che",
}

COMPOUND_SURNAMES: Final[dict[str, tuple[str, str]]] = {
    "尉迟": ("yu", "chi"),
    "长孙": ("zhang", "sun"),
    "万俟": ("mo", "qi"),
    "单于": ("chan", "yu"),
    "澹台": ("tan", "tai"),
    "令狐": ("ling", "hu"),
    "欧阳": ("ou", "yang"),
    "上官": ("shang", "guan"),
    "司马": ("si", "ma"),
    "诸葛": ("zhu", "ge"),
    "皇甫": ("huang", "fu"),
    "公孙": ("gong", "sun"),
    "慕容": ("mu", "rong"),
    "东方": ("dong", "fang"),
    "夏侯": ("xia", "hou"),
    "宇文": ("yu", "wen"),
    "呼延": ("hu", "yan"),
    "司徒": ("si", "tu"),
    "司空": ("si", "kong"),
    "端木": ("duan", "mu"),
    "轩辕": ("xuan", "yuan"),
    "独孤": ("du", "gu"),
    "南宫": ("nan", "gong"),
    "西门": ("xi", "men"),
    "钟离": ("zhong", "li"),
    "申屠": ("shen", "tu"),
    "淳于": ("chun", "yu"),
    "乐正": ("yue", "zheng"),
    "濮阳": ("pu", "yang"),
    "太叔": ("tai", "shu"),
    "公冶": ("gong", "ye"),
    "亓官": ("qi", "guan"),
    "仉督": ("zhang", "du"),
    "赫连": ("he", "lian"),
    "拓跋": ("tuo", "ba"),
    "第五": ("di", "wu"),
}

_STYLE: Final = Style.NORMAL
_WHOLE_CACHE_SIZE: Final = 1 << 16
_RUN_CACHE_SIZE: Final = 1 << 15
_LONGEST_PHRASE: Final = 10  # longest key in pypinyin's phrase dictionary (0.55)
_ALNUM_RUN_RE: Final = re.compile(r"[a-z]+|[0-9]+")

# Character classes returned by _classify.
_DROP: Final = 0
_HAN: Final = 1  # one reading: convertible on its own
_HAN_MULTI: Final = 2  # heteronym: needs phrase context
_ASCII: Final = 3


def _ascii_letters(syllable: str) -> str:
    if syllable.isascii():
        return syllable
    folded = unicodedata.normalize("NFKD", syllable).replace("ü", "v")
    return "".join(ch for ch in folded if ch.isascii() and ch.isalpha())


@cache
def _classify(ch: str) -> tuple[int, str]:
    """(class, text): the pinyin of a Han character, the ASCII fold of a letter/digit."""
    readings = PINYIN_DICT.get(ord(ch))
    if readings is not None:
        syllable = _ascii_letters(lazy_pinyin(ch, style=_STYLE)[0].lower())
        return (_HAN_MULTI if "," in readings else _HAN, syllable)
    if ch.isascii():
        return (_ASCII, ch.lower()) if ch.isalnum() else (_DROP, "")
    folded = unicodedata.normalize("NFKC", ch).lower()
    if folded.isascii() and folded.isalnum():
        return (_ASCII, folded)
    return (_DROP, "")


@lru_cache(maxsize=_RUN_CACHE_SIZE)
def _phrase(run: str) -> tuple[str, ...]:
    """Pinyin of a Han run containing a heteronym, using pypinyin's segmentation."""
    return tuple(_ascii_letters(s.lower()) for s in lazy_pinyin(run, style=_STYLE))


def _needs_context(run: str) -> bool:
    """Whether pypinyin's segmentation could read ``run`` differently from its
    characters' default readings: only if some part of it is a dictionary phrase."""
    n = len(run)
    if n > _LONGEST_PHRASE:
        return True
    return any(run[i:j] in PHRASES_DICT for i in range(n - 1) for j in range(i + 2, n + 1))


def _tokens(text: str) -> list[str]:
    """Pinyin syllables and ASCII letter/digit runs, in order."""
    out: list[str] = []
    han_run: list[str] = []  # characters of the current Han run
    han_syllables: list[str] = []  # their single-character readings
    heteronym = False
    ascii_run: list[str] = []

    def flush_han() -> None:
        nonlocal heteronym
        if han_run:
            run = "".join(han_run)
            if heteronym and len(run) > 1 and _needs_context(run):
                out.extend(_phrase(run))
            else:
                out.extend(han_syllables)
            han_run.clear()
            han_syllables.clear()
            heteronym = False

    def flush_ascii() -> None:
        if ascii_run:
            out.extend(_ALNUM_RUN_RE.findall("".join(ascii_run)))
            ascii_run.clear()

    for ch in text:
        kind, value = _classify(ch)
        if kind in (_HAN, _HAN_MULTI):
            flush_ascii()
            han_run.append(ch)
            han_syllables.append(value)
            heteronym = heteronym or kind == _HAN_MULTI
        elif kind == _ASCII:
            flush_han()
            ascii_run.append(value)
        else:
            flush_han()
            flush_ascii()
    flush_han()
    flush_ascii()
    return out


@lru_cache(maxsize=_WHOLE_CACHE_SIZE)
def _syllables(text: str, is_person_name: bool) -> tuple[str, ...]:
    if is_person_name:
        name = text.strip()
        compound = COMPOUND_SURNAMES.get(name[:2])
        if compound is not None:
            return (*compound, *_tokens(name[2:]))
        single = SURNAMES.get(name[:1])
        if single is not None:
            return (single, *_tokens(name[1:]))
    return tuple(_tokens(text))


def full_pinyin(text: str, *, is_person_name: bool = False) -> str:
    """Lower-case toneless pinyin without separators: ``"张三"`` -> ``"zhangsan"``.

    With ``is_person_name=True`` a leading surname gets its surname reading
    (``"单雄信"`` -> ``"shanxiongxin"`` instead of ``"danxiongxin"``).
    """
    return "".join(_syllables(text, is_person_name))


def initials(text: str, *, is_person_name: bool = False) -> str:
    """First letters: ``"张三"`` -> ``"zs"``, ``"安徽江淮汽车"`` -> ``"ahjhqc"``.

    Digit runs are kept whole (``"4S店"`` -> ``"4sd"``), ASCII letter runs give their
    first letter.
    """
    return _initials(text, is_person_name)


@lru_cache(maxsize=_WHOLE_CACHE_SIZE)
def _initials(text: str, is_person_name: bool) -> str:
    return "".join(
        token if token[0].isdigit() else token[0] for token in _syllables(text, is_person_name)
    )

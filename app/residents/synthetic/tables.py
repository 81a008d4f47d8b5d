"""Statistics and word lists the synthetic residents are drawn from.

Kept as data in one place so a reviewer can check each figure against its source, and so the
generator code holds no magic numbers about Japan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

# 令和2年国勢調査 (2020 Census of Japan), 人口等基本集計, total population by 5-year age group,
# 不詳補完値 (age-unknown distributed), persons; the last band is 100+. Statistics Bureau of Japan
# (総務省統計局), https://www.stat.go.jp/data/kokusei/2020/ . Shares: 0-14 11.9 %, 15-64 59.5 %,
# 65+ 28.6 %, 75+ 14.8 %.
AGE_PYRAMID_2020: tuple[tuple[int, int], ...] = (
    (0, 4_541_497),
    (5, 5_114_236),
    (10, 5_375_931),
    (15, 5_706_475),
    (20, 6_319_636),
    (25, 6_384_253),
    (30, 6_713_587),
    (35, 7_498_137),
    (40, 8_475_611),
    (45, 9_867_601),
    (50, 8_738_123),
    (55, 7_940_020),
    (60, 7_442_135),
    (65, 8_236_447),
    (70, 9_189_061),
    (75, 7_065_133),
    (80, 5_404_021),
    (85, 3_741_934),
    (90, 1_853_340),
    (95, 501_498),
    (100, 80_450),
)
MAX_AGE = 105

# 2020 Census, 一般世帯 by number of members (national, rounded): 1 person 38 %, 2: 28 %, 3: 16 %,
# 4: 13 %, 5 or more 5 % (split 5: 3.6, 6: 1.0, 7+: 0.4). A city's own mean (residents /
# households) tilts this table, see ``household_size_weights``.
HOUSEHOLD_SIZES_2020: tuple[tuple[int, float], ...] = (
    (1, 38.0),
    (2, 28.0),
    (3, 16.0),
    (4, 13.0),
    (5, 3.6),
    (6, 1.0),
    (7, 0.4),
)


@lru_cache(maxsize=1)
def single_year_ages() -> tuple[float, ...]:
    """Weight of each age 0..MAX_AGE: a band's count spread evenly over its five years (100+ thins)."""
    weights = [0.0] * (MAX_AGE + 1)
    for lo, count in AGE_PYRAMID_2020:
        if lo == 100:
            span = list(range(100, MAX_AGE + 1))
            shares = [0.5**i for i in range(len(span))]
            for age, share in zip(span, shares, strict=True):
                weights[age] = count * share / sum(shares)
        else:
            for age in range(lo, lo + 5):
                weights[age] = count / 5
    return tuple(weights)


@lru_cache(maxsize=8192)
def age_cum_weights(lo: int, hi: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Ages lo..hi (clamped to 0..MAX_AGE) and cumulative pyramid weights, for ``random.choices``."""
    lo = min(max(0, lo), MAX_AGE)
    hi = min(max(lo, hi), MAX_AGE)
    ages = tuple(range(lo, hi + 1))
    table = single_year_ages()
    return ages, tuple(accumulate(table[a] for a in ages))


@lru_cache(maxsize=1024)
def household_size_weights(mean: float) -> tuple[float, ...]:
    """The national size table exponentially tilted so that its mean is ``mean``.

    p'(k) ∝ p(k)·e^(−t·k), with t found by bisection: the smallest change (in the
    Kullback-Leibler sense) to the national shape that gives a city's residents/households ratio,
    e.g. Osaka's many one-person households (mean ≈ 1.9). Returns cumulative weights over sizes 1..7.
    """
    sizes = [k for k, _ in HOUSEHOLD_SIZES_2020]
    base = [w for _, w in HOUSEHOLD_SIZES_2020]
    mean = min(max(mean, 1.0001), 6.9)

    def tilted(t: float) -> list[float]:
        return [w * math.exp(-t * k) for k, w in zip(sizes, base, strict=True)]

    def mean_of(t: float) -> float:
        ws = tilted(t)
        return sum(k * w for k, w in zip(sizes, ws, strict=True)) / sum(ws)

    lo, hi = -10.0, 10.0  # mean_of is decreasing in t
    for _ in range(60):
        mid = (lo + hi) / 2
        if mean_of(mid) > mean:
            lo = mid
        else:
            hi = mid
    ws = tilted((lo + hi) / 2)
    total = sum(ws)
    return tuple(accumulate(w / total for w in ws))


@dataclass(frozen=True)
class CityProfile:
    """What the generator needs to know about one city."""

    tenant_id: str
    prefecture: str
    city: str  # as in the postal data's city column (大阪市 for 大阪市北区 ...)
    # JIS X 0402 municipality codes (Osaka: one per ward) and their population weights.
    wards: tuple[tuple[str, int], ...]
    residents: int  # city scale: living residents (住民)
    households: int  # city scale: households with at least one living member
    small_residents: int
    small_households: int
    foreign_share: float  # share of households of foreign residents (外国人)
    apartment_share: float  # share of households with a 方書 (apartment, room)
    urban: bool  # 住居表示 (N番N号) also in towns without 丁目; else 地番 (N番地N)

    def counts(self, scale: str) -> tuple[int, int]:
        if scale == "city":
            return self.residents, self.households
        if scale == "small":
            return self.small_residents, self.small_households
        raise ValueError(f"unknown scale {scale!r} (small or city)")


# Osaka's 24 wards with their populations (2020 Census, approximately; only the shares matter).
OSAKA_WARDS: tuple[tuple[str, int], ...] = (
    ("27102", 107_904),  # 都島区
    ("27103", 79_328),  # 福島区
    ("27104", 64_634),  # 此花区
    ("27106", 104_727),  # 西区
    ("27107", 80_017),  # 港区
    ("27108", 61_470),  # 大正区
    ("27109", 84_090),  # 天王寺区
    ("27111", 76_243),  # 浪速区
    ("27113", 95_930),  # 西淀川区
    ("27114", 176_943),  # 東淀川区
    ("27115", 85_232),  # 東成区
    ("27116", 126_875),  # 生野区
    ("27117", 89_894),  # 旭区
    ("27118", 167_925),  # 城東区
    ("27119", 112_201),  # 阿倍野区
    ("27120", 150_876),  # 住吉区
    ("27121", 126_694),  # 東住吉区
    ("27122", 105_305),  # 西成区
    ("27123", 182_202),  # 淀川区
    ("27124", 110_711),  # 鶴見区
    ("27125", 118_850),  # 住之江区
    ("27126", 188_806),  # 平野区
    ("27127", 141_136),  # 北区
    ("27128", 102_931),  # 中央区
)

# City-scale counts: Osaka and Gobo from the brief and residents.md (Gobo: 住民基本台帳 20,543 persons in
# 10,635 households); Yamaguchi's household count is an approximation (住民基本台帳, about 2.1 per
# household). Small scale keeps each city's ratio and stays under about 2,000 people.
PROFILES: dict[str, CityProfile] = {
    "osaka": CityProfile(
        tenant_id="osaka",
        prefecture="大阪府",
        city="大阪市",
        wards=OSAKA_WARDS,
        residents=2_800_000,
        households=1_500_000,
        small_residents=2_000,
        small_households=1_071,
        foreign_share=0.05,
        apartment_share=0.55,
        urban=True,
    ),
    "gobo": CityProfile(
        tenant_id="gobo",
        prefecture="和歌山県",
        city="御坊市",
        wards=(("30205", 1),),
        residents=20_543,
        households=10_635,
        small_residents=400,
        small_households=207,
        foreign_share=0.01,
        apartment_share=0.15,
        urban=False,
    ),
    "yamaguchi": CityProfile(
        tenant_id="yamaguchi",
        prefecture="山口県",
        city="山口市",
        wards=(("35203", 1),),
        residents=190_000,
        households=91_000,
        small_residents=1_000,
        small_households=479,
        foreign_share=0.012,
        apartment_share=0.3,
        urban=False,
    ),
}


def profile(tenant_id: str) -> CityProfile:
    try:
        return PROFILES[tenant_id]
    except KeyError:
        raise KeyError(f"no synthetic-resident profile for tenant {tenant_id!r}") from None


# Foreign residents (外国人住民) are registered under the alphabet name of their residence card, with
# a katakana reading; Faker's ja_JP locale has none, so a short list per nationality, weighted by the
# largest groups in Japan (在留外国人統計, roughly: China, Viet Nam, Korea, the Philippines, Brazil,
# Nepal). Each entry: (name, kana).
@dataclass(frozen=True)
class ForeignNames:
    nationality: str
    weight: int
    surnames: tuple[tuple[str, str], ...]
    male: tuple[tuple[str, str], ...]
    female: tuple[tuple[str, str], ...]


FOREIGN_NAMES: tuple[ForeignNames, ...] = (
    ForeignNames(
        "中国",
        24,
        (("WANG", "ワン"), ("LI", "リ"), ("ZHANG", "チャン"), ("LIU", "リュウ"), ("CHEN", "チェン")),
        (("WEI", "ウェイ"), ("HAO", "ハオ"), ("JUN", "ジュン")),
        (("LING", "リン"), ("XIU YING", "シウ イン"), ("MEI", "メイ")),
    ),
    ForeignNames(
        "ベトナム",
        18,
        (("NGUYEN", "グエン"), ("TRAN", "チャン"), ("PHAM", "ファム"), ("LE", "レ")),
        (("VAN AN", "ヴァン アン"), ("MINH DUC", "ミン ドゥック"), ("VAN HUNG", "ヴァン フン")),
        (("THI HOA", "ティ ホア"), ("THI LAN", "ティ ラン"), ("THI MAI", "ティ マイ")),
    ),
    ForeignNames(
        "韓国",
        13,
        (("KIM", "キム"), ("PARK", "パク"), ("LEE", "イ"), ("CHOI", "チェ")),
        (("MINJUN", "ミンジュン"), ("JIHOON", "ジフン")),
        (("SEOYEON", "ソヨン"), ("JIWOO", "ジウ")),
    ),
    ForeignNames(
        "フィリピン",
        10,
        (("SANTOS", "サントス"), ("REYES", "レイエス"), ("CRUZ", "クルス")),
        (("JOSE", "ホセ"), ("MARK", "マーク")),
        (("MARIA", "マリア"), ("ANA", "アナ")),
    ),
    ForeignNames(
        "ブラジル",
        7,
        (("SILVA", "シウバ"), ("SOUZA", "ソウザ"), ("OLIVEIRA", "オリベイラ")),
        (("LUCAS", "ルーカス"), ("GABRIEL", "ガブリエル")),
        (("JULIANA", "ジュリアナ"), ("BEATRIZ", "ベアトリス")),
    ),
    ForeignNames(
        "ネパール",
        5,
        (("GURUNG", "グルン"), ("TAMANG", "タマン"), ("SHRESTHA", "シュレスタ")),
        (("RAJ", "ラジ"), ("BIKASH", "ビカス")),
        (("SITA", "シタ"), ("ANJALI", "アンジャリ")),
    ),
)
FOREIGN_WEIGHTS = tuple(accumulate(float(group.weight) for group in FOREIGN_NAMES))

# 方書: building names (prefix + the town or a word) and room numbers.
BUILDING_PREFIXES = (
    "メゾン",
    "コーポ",
    "ハイツ",
    "レジデンス",
    "グランドメゾン",
    "サンハイツ",
    "パークハイツ",
    "ロイヤルマンション",
    "シティハイツ",
    "アーバンライフ",
    "ライオンズマンション",
    "プレサンス",
)
BUILDING_WORDS = ("青葉", "桜", "若草", "朝日", "緑風", "白鷺", "曙", "清風", "光", "悠遊")

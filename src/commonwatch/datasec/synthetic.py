"""Fictitious identifiers with valid (or deliberately wrong) check digits, and labelled text.

Used by the demo sample, the accuracy tests and the benchmark. Every value is generated: the
check digits are right, the people are not real. Nothing here is used to scan.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

from commonwatch.datasec.detectors import USCC_ALPHABET

ADDRESS_CODES = ("110101", "110105", "310104", "440305", "330106", "510107", "420106", "320102")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
MOBILE_PREFIXES = ("138", "139", "150", "186", "189", "199", "177", "135", "158", "166")
PROVINCES = "京沪粤浙苏川鄂津渝闽"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
SURNAMES = "王李张刘陈杨黄赵周吴"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰")
STREETS = ("北京市朝阳区建国路{n}号", "上海市徐汇区漕溪北路{n}号", "广东省深圳市南山区科技园路{n}号",
           "浙江省杭州市西湖区文三路{n}号", "四川省成都市武侯区人民南路{n}号")


def id_check(body17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def resident_id(rng: random.Random, birth: date | None = None) -> str:
    birth = birth or date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))
    body = f"{rng.choice(ADDRESS_CODES)}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return body + id_check(body)


def wrong_check(value: str, alphabet: str = "0123456789") -> str:
    """The same value with a different (wrong) last character."""
    last = value[-1]
    choices = [c for c in alphabet if c != last]
    return value[:-1] + choices[sum(map(ord, value)) % len(choices)]


def org_code(rng: random.Random) -> str:
    """A GB 11714 organisation code: 8 characters and their check character."""
    body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2),
                                                                               strict=True))
    c9 = 11 - total % 11
    return body + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))


def uscc(rng: random.Random) -> str:
    body = rng.choice("159Y") + rng.choice("123") + rng.choice(ADDRESS_CODES) + org_code(rng)
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return body + USCC_ALPHABET[(31 - total % 31) % 31]


def luhn_complete(body: str) -> str:
    """``body`` plus its Luhn check digit."""
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def unionpay_card(rng: random.Random, length: int = 16) -> str:
    return luhn_complete("62" + "".join(str(rng.randrange(10)) for _ in range(length - 3)))


def visa_card(rng: random.Random) -> str:
    return luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14)))


def mastercard(rng: random.Random) -> str:
    return luhn_complete(str(rng.randrange(51, 56)) + "".join(str(rng.randrange(10)) for _ in range(13)))


def imei(rng: random.Random) -> str:
    return luhn_complete("35" + "".join(str(rng.randrange(10)) for _ in range(12)))


def iban(rng: random.Random, country: str = "DE", length: int = 22) -> str:
    bban = "".join(str(rng.randrange(10)) for _ in range(length - 4))
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(8))


def landline(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"010-{rng.randrange(2, 9)}{rng.randrange(0, 10**7):07d}"
    return f"0755-{rng.randrange(2, 9)}{rng.randrange(0, 10**7):07d}"


def email(rng: random.Random) -> str:
    user = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(4, 10)))
    return f"{user}{rng.randrange(100)}@{rng.choice(('example.com', 'example.cn', 'mail.example.org'))}"


def ipv4(rng: random.Random) -> str:
    return f"{rng.choice((198, 203, 192))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ipv6(rng: random.Random) -> str:
    return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"


def plate(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(PROVINCES) + rng.choice(PLATE_LETTERS) + rng.choice("DF") + rng.choice(
            PLATE_LETTERS) + f"{rng.randrange(10000):04d}"
    return rng.choice(PROVINCES) + rng.choice(PLATE_LETTERS) + f"{rng.randrange(100000):05d}"


def passport(rng: random.Random) -> str:
    return "E" + rng.choice("ABCDFGHJK") + f"{rng.randrange(10**7):07d}"


def travel_permit(rng: random.Random) -> str:
    return rng.choice("HM") + f"{rng.randrange(10**8):08d}" + f"{rng.randrange(5):02d}"


def gps(rng: random.Random) -> str:
    return f"{rng.uniform(20, 45):.6f},{rng.uniform(100, 125):.6f}"


def address(rng: random.Random) -> str:
    return rng.choice(STREETS).format(n=rng.randrange(1, 999))


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", *GIVEN))


# --- labelled lines (accuracy corpus) ---------------------------------------------------------------

#: entity -> (generator, English template, Chinese template)
ENTITIES = {
    "cn_resident_id": (resident_id, "customer id_no {v} verified", "客户身份证号：{v}，已核验"),
    "cn_mobile": (mobile, "call back on {v} after 6pm", "联系电话 {v}，请回电"),
    "cn_landline": (landline, "office phone {v}", "办公电话：{v}"),
    "cn_bank_card": (unionpay_card, "refund to card {v}", "退款至银行卡{v}"),
    "payment_card": (visa_card, "paid with card {v}", "使用信用卡 {v} 支付"),
    "iban": (iban, "wire to IBAN {v}", "汇至国际账号 {v}"),
    "email": (email, "reply to {v} please", "邮箱：{v}"),
    "ipv4": (ipv4, "login from {v} accepted", "登录来源地址 {v}"),
    "ipv6": (ipv6, "client {v} connected", "客户端 {v} 已连接"),
    "imei": (imei, "device IMEI {v} registered", "设备IMEI：{v}"),
    "cn_uscc": (uscc, "supplier credit code {v}", "统一社会信用代码：{v}"),
    "vehicle_plate": (plate, "vehicle {v} entered the car park", "车牌 {v} 驶入停车场"),
    "cn_passport": (passport, "passport {v} scanned", "护照号码 {v}"),
    "hk_macao_permit": (travel_permit, "home return permit {v}", "回乡证 {v}"),
    "gps": (gps, "last position {v}", "最后定位 {v}"),
    "cn_postal_address": (address, "ship to {v}", "收货地址：{v}"),
}

#: Near misses: identifier-shaped values with a wrong check digit, labelled as nothing.
NEAR_MISSES = {
    "cn_resident_id": lambda r: wrong_check(resident_id(r), "0123456789X"),
    "cn_bank_card": lambda r: wrong_check(unionpay_card(r)),
    "payment_card": lambda r: wrong_check(visa_card(r)),
    "imei": lambda r: wrong_check(imei(r)),
    "iban": lambda r: (lambda v: v[:2] + f"{(int(v[2:4]) + 1) % 100:02d}" + v[4:])(iban(r)),
    "cn_uscc": lambda r: wrong_check(uscc(r), USCC_ALPHABET),
}


def noise_line(rng: random.Random) -> str:
    """Log-like text full of numbers that are not personal information."""
    ts = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
    kind = rng.randrange(6)
    if kind == 0:
        clock = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}"
        return (f"{ts.isoformat()}T{clock}Z INFO order={ts:%Y%m%d}{rng.randrange(10**10):010d} "
                f"amount={rng.randrange(10**6)}.{rng.randrange(100):02d}")
    if kind == 1:
        ports = ",".join(str(rng.randrange(1, 65536)) for _ in range(rng.randrange(3, 9)))
        return f"scan result open ports {ports} latency {rng.randrange(1000)}ms pid {rng.randrange(1, 99999)}"
    if kind == 2:
        return (f"txn {rng.randrange(10**17, 10**18)} settled ts={rng.randrange(1_700_000_000_000, 1_800_000_000_000)} "
                f"seq {rng.randrange(10**9)}")
    if kind == 3:
        return (f"version {rng.randrange(1, 20)}.{rng.randrange(30)}.{rng.randrange(100)} build "
                f"{rng.randrange(10**5, 10**6)} sha {rng.getrandbits(64):016x}")
    if kind == 4:
        return (f"订单号 {ts:%Y%m%d}{rng.randrange(10**8):08d} 于 {ts.isoformat()} {rng.randrange(24):02d}:"
                f"{rng.randrange(60):02d} 发货，件数 {rng.randrange(1, 50)}")
    return (f"[{rng.randrange(10**5)}] GET /api/items/{rng.randrange(10**12)}?page={rng.randrange(100)} 200 "
            f"{rng.randrange(10**6)} bytes uuid={rng.getrandbits(128):032x}")


def labelled_lines(rng: random.Random, n: int, pi_share: float = 0.3) -> Iterator[tuple[str, str | None, str | None]]:
    """(line, entity or None, the identifier) — a third of lines carry one identifier by default."""
    names = list(ENTITIES)
    misses = list(NEAR_MISSES)
    for _ in range(n):
        r = rng.random()
        if r < pi_share:
            entity = rng.choice(names)
            gen, en, zh = ENTITIES[entity]
            value = gen(rng)
            yield (en if rng.random() < 0.5 else zh).format(v=value), entity, value
        elif r < pi_share + 0.1:
            entity = rng.choice(misses)
            value = NEAR_MISSES[entity](rng)
            yield f"reference {value} rejected", None, value
        else:
            yield noise_line(rng), None, None

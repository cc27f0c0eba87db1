"""Demo customers in six locales: names, addresses, phone numbers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shopdesk.demo.rows import RANDOM_CUSTOMERS


@dataclass(frozen=True)
class _City:
    city: str  # as written in the address
    city_en: str  # as carriers print it
    province: str
    province_code: str
    country: str
    country_code: str
    zip_pattern: str  # '#' = digit, '@' = letter, other characters literal


_US_CITIES = (
    _City("Austin", "Austin", "Texas", "TX", "United States", "US", "787##"),
    _City("Seattle", "Seattle", "Washington", "WA", "United States", "US", "981##"),
    _City("Brooklyn", "Brooklyn", "New York", "NY", "United States", "US", "112##"),
    _City("Chicago", "Chicago", "Illinois", "IL", "United States", "US", "606##"),
    _City("San Francisco", "San Francisco", "California", "CA", "United States", "US", "941##"),
    _City("Denver", "Denver", "Colorado", "CO", "United States", "US", "802##"),
    _City("Portland", "Portland", "Oregon", "OR", "United States", "US", "972##"),
    _City("Miami", "Miami", "Florida", "FL", "United States", "US", "331##"),
    _City("Boston", "Boston", "Massachusetts", "MA", "United States", "US", "021##"),
    _City("Houston", "Houston", "Texas", "TX", "United States", "US", "770##"),
    _City("Westminster", "Westminster", "California", "CA", "United States", "US", "92683"),
    _City("San Jose", "San Jose", "California", "CA", "United States", "US", "951##"),
    _City("Flushing", "Flushing", "New York", "NY", "United States", "US", "113##"),
    _City("Monterey Park", "Monterey Park", "California", "CA", "United States", "US", "91754"),
)
_CA_CITIES = (
    _City("Toronto", "Toronto", "Ontario", "ON", "Canada", "CA", "M5V #@#"),
    _City("Vancouver", "Vancouver", "British Columbia", "BC", "Canada", "CA", "V6B #@#"),
)
_ES_CITIES = (
    _City("Madrid", "Madrid", "Madrid", "M", "Spain", "ES", "280##"),
    _City("Barcelona", "Barcelona", "Barcelona", "B", "Spain", "ES", "080##"),
)
_MX_CITIES = (_City("Ciudad de México", "Mexico City", "Ciudad de México", "CMX", "Mexico", "MX", "06###"),)
_VN_CITIES = (
    _City("Thành phố Hồ Chí Minh", "Ho Chi Minh City", "Hồ Chí Minh", "SG", "Vietnam", "VN", "700000"),
    _City("Hà Nội", "Hanoi", "Hà Nội", "HN", "Vietnam", "VN", "100000"),
)
_CN_CITIES = (
    _City("上海市", "Shanghai", "上海市", "SH", "China", "CN", "200###"),
    _City("北京市", "Beijing", "北京市", "BJ", "China", "CN", "100###"),
)
_TW_CITIES = (
    _City("臺北市", "Taipei", "臺北市", "TPE", "Taiwan", "TW", "106"),
    _City("臺中市", "Taichung", "臺中市", "TXG", "Taiwan", "TW", "407"),
)

_STREETS = {
    "US": ("Maple Ave", "Oak Street", "Cedar Lane", "Pine Street", "Elm Street", "Lakeview Dr", "Sunset Blvd",
           "Hillcrest Rd", "Park Avenue", "River Road"),
    "CA": ("King Street West", "Queen Street", "Granville Street", "Spadina Avenue"),
    "ES": ("Calle Mayor", "Calle de Alcalá", "Carrer de Mallorca", "Gran Vía"),
    "MX": ("Avenida Reforma", "Calle Durango", "Avenida Álvaro Obregón"),
    "VN": ("Đường Lê Lợi", "Đường Nguyễn Huệ", "Phố Hàng Bài", "Đường Điện Biên Phủ"),
    "CN": ("南京西路", "淮海中路", "建国门外大街", "长安街"),
    "TW": ("忠孝東路", "仁愛路", "中山北路", "台灣大道"),
}

# (local first name, local last name, email handle)
_NAMES_EN = (
    ("Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas", "Mia", "Ethan", "Harper", "Mason",
     "Grace", "Owen", "Chloe", "Jack", "Ella", "Henry", "Zoe", "Leo"),
    ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Walker", "Young", "Hall",
     "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Carter"),
)
_NAMES_ES = (
    ("Ana", "Lucía", "Sofía", "Mateo", "Santiago", "Valentina", "Diego", "Camila", "Javier", "Isabel", "Carmen",
     "Pablo", "Elena", "Andrés", "Alejandro", "Marta"),
    ("García", "Martínez", "López", "Hernández", "González", "Rodríguez", "Pérez", "Sánchez", "Ramírez",
     "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Morales", "Jiménez"),
)
_RU_MALE = (("Дмитрий", "dmitry"), ("Алексей", "alexey"), ("Сергей", "sergey"), ("Иван", "ivan"),
            ("Михаил", "mikhail"), ("Андрей", "andrey"))
_RU_FEMALE = (("Анна", "anna"), ("Мария", "maria"), ("Екатерина", "ekaterina"), ("Ольга", "olga"),
              ("Наталья", "natalia"), ("Татьяна", "tatiana"))
_RU_SURNAMES = (("Иванов", "Иванова", "ivanov"), ("Смирнов", "Смирнова", "smirnov"),
                ("Кузнецов", "Кузнецова", "kuznetsov"), ("Попов", "Попова", "popov"),
                ("Соколов", "Соколова", "sokolov"), ("Лебедев", "Лебедева", "lebedev"),
                ("Новиков", "Новикова", "novikov"), ("Морозов", "Морозова", "morozov"),
                ("Волков", "Волкова", "volkov"), ("Павлов", "Павлова", "pavlov"))
_VI_FAMILY = (("Nguyễn", "nguyen"), ("Trần", "tran"), ("Lê", "le"), ("Phạm", "pham"), ("Hoàng", "hoang"),
              ("Huỳnh", "huynh"), ("Phan", "phan"), ("Vũ", "vu"), ("Võ", "vo"), ("Đặng", "dang"))
_VI_GIVEN = (("Thị Lan", "lan"), ("Văn Minh", "minh"), ("Thu Hà", "ha"), ("Quốc Bảo", "bao"),
             ("Ngọc Anh", "anh"), ("Đức Huy", "huy"), ("Thanh Tâm", "tam"), ("Minh Châu", "chau"),
             ("Hoàng Long", "long"), ("Mai Phương", "phuong"))
_ZH_CN_FAMILY = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
                 ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"))
_ZH_CN_GIVEN = (("芳", "fang"), ("伟", "wei"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"),
                ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("晓明", "xiaoming"), ("丽华", "lihua"))
_ZH_TW_FAMILY = (("陳", "chen"), ("林", "lin"), ("黃", "huang"), ("張", "chang"), ("李", "lee"), ("王", "wang"),
                 ("吳", "wu"), ("劉", "liu"), ("蔡", "tsai"), ("楊", "yang"))
_ZH_TW_GIVEN = (("怡君", "yichun"), ("志明", "chihming"), ("淑芬", "shufen"), ("家豪", "chiahao"),
                ("雅婷", "yating"), ("俊傑", "chunchieh"), ("美玲", "meiling"), ("冠宇", "kuanyu"))

_DOMAINS = ("example.com", "example.org", "example.net")
# the locale of random customer i is _LOCALE_CYCLE[i % 10]: every locale is always present
_LOCALE_CYCLE = ("en", "en", "es", "en", "ru", "vi", "en", "zh-CN", "es", "zh-TW")
_HOMES: dict[str, tuple[tuple[tuple[_City, ...], int], ...]] = {
    "en": ((_US_CITIES, 9), (_CA_CITIES, 1)),
    "es": ((_US_CITIES, 6), (_ES_CITIES, 3), (_MX_CITIES, 1)),
    "ru": ((_US_CITIES, 7), (_CA_CITIES, 3)),
    "vi": ((_US_CITIES, 7), (_VN_CITIES, 3)),
    "zh-CN": ((_US_CITIES, 5), (_CN_CITIES, 5)),
    "zh-TW": ((_US_CITIES, 4), (_TW_CITIES, 6)),
}


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randint(0, 9)))
        elif ch == "@":
            out.append(rng.choice("ABCEGHJKLMNPRSTVWXYZ"))
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class Person:
    key: str  # customer external id
    first: str
    last: str
    email: str
    locale: str
    phone: str | None
    city: _City
    address1: str
    zip: str
    since: datetime | None = None

    def address(self) -> dict[str, Any]:
        return {
            "first_name": self.first,
            "last_name": self.last,
            "name": f"{self.first} {self.last}",
            "address1": self.address1,
            "address2": None,
            "city": self.city.city,
            "province": self.city.province,
            "province_code": self.city.province_code,
            "zip": self.zip,
            "country": self.city.country,
            "country_code": self.city.country_code,
            "phone": self.phone,
        }


def _street_address(rng: random.Random, country: str) -> str:
    street = rng.choice(_STREETS[country])
    number = rng.randint(2, 980)
    if country in {"US", "CA"}:
        return f"{number} {street}"
    if country in {"CN", "TW"}:
        return f"{street}{number}号" if country == "CN" else f"{street}{number}號"
    return f"{street} {number}" if country in {"ES", "MX"} else f"{number} {street}"


def _random_name(rng: random.Random, locale: str) -> tuple[str, str, str]:
    """``(first name, last name, email handle)`` in the locale's script."""
    if locale == "en":
        first, last = rng.choice(_NAMES_EN[0]), rng.choice(_NAMES_EN[1])
        return first, last, f"{first}.{last}".lower()
    if locale == "es":
        first, last = rng.choice(_NAMES_ES[0]), rng.choice(_NAMES_ES[1])
        handle = f"{first}.{last}".lower()
        for a, b in (("á", "a"), ("é", "e"), ("í", "i"), ("ó", "o"), ("ú", "u"), ("ñ", "n")):
            handle = handle.replace(a, b)
        return first, last, handle
    if locale == "ru":
        surname_m, surname_f, s_latin = rng.choice(_RU_SURNAMES)
        if rng.random() < 0.5:
            (first, f_latin), last = rng.choice(_RU_MALE), surname_m
        else:
            (first, f_latin), last = rng.choice(_RU_FEMALE), surname_f
            s_latin += "a"
        return first, last, f"{f_latin}.{s_latin}"
    if locale == "vi":
        (family, fam_latin), (given, given_latin) = rng.choice(_VI_FAMILY), rng.choice(_VI_GIVEN)
        return given, family, f"{given_latin}.{fam_latin}"
    family_list, given_list = (_ZH_CN_FAMILY, _ZH_CN_GIVEN) if locale == "zh-CN" else (_ZH_TW_FAMILY, _ZH_TW_GIVEN)
    (family, fam_latin), (given, given_latin) = rng.choice(family_list), rng.choice(given_list)
    return given, family, f"{given_latin}.{fam_latin}"


def _phone(rng: random.Random, country: str) -> str | None:
    if country in {"US", "CA"}:
        # 555-0100 … 555-0199 are reserved for fiction
        return f"+1{rng.choice(('202', '415', '512', '617', '312', '416'))}55501{rng.randint(0, 99):02d}"
    return None


# fixed customers of the showcase orders: (key, first, last, email, locale, city, zip, address1, phone)
_PERSONAS: tuple[tuple[str, str, str, str, str, _City, str, str, str | None], ...] = (
    ("demo-customer-ana", "Ana", "García", "ana@example.com", "es", _US_CITIES[0], "78704",
     "1208 South Congress Ave", "+15125550143"),
    ("demo-customer-liam", "Liam", "Carter", "liam.carter@example.org", "en", _US_CITIES[1], "98103",
     "3410 Fremont Ave N", "+12065550118"),
    ("demo-customer-dmitry", "Дмитрий", "Соколов", "dmitry.sokolov@example.com", "ru", _US_CITIES[2], "11215",
     "412 7th Avenue", "+17185550162"),
    ("demo-customer-lan", "Thị Lan", "Nguyễn", "lan.nguyen@example.net", "vi", _US_CITIES[10], "92683",
     "9200 Bolsa Ave", "+17145550127"),
    ("demo-customer-fang", "芳", "王", "fang.wang@example.com", "zh-CN", _CN_CITIES[0], "200040",
     "南京西路1266号", None),
    ("demo-customer-yichun", "怡君", "陳", "yichun.chen@example.org", "zh-TW", _TW_CITIES[0], "106",
     "忠孝東路四段181號", None),
    ("demo-customer-olivia", "Olivia", "Brown", "olivia.brown@example.com", "en", _CA_CITIES[0], "M5V 2T6",
     "301 King Street West", "+14165550155"),
    ("demo-customer-mateo", "Mateo", "Rodríguez", "mateo.rodriguez@example.org", "es", _ES_CITIES[0], "28013",
     "Calle Mayor 12", None),
)


def plan_people(seed: int) -> list[Person]:
    people = [
        Person(key, first, last, email, locale, phone, city, address1, zip_)
        for key, first, last, email, locale, city, zip_, address1, phone in _PERSONAS
    ]
    taken = {p.email for p in people}
    for i in range(RANDOM_CUSTOMERS):
        rng = random.Random(f"{seed}:customer:{i}")
        locale = _LOCALE_CYCLE[i % len(_LOCALE_CYCLE)]
        homes = _HOMES[locale]
        cities = rng.choices([h for h, _ in homes], weights=[w for _, w in homes])[0]
        city = rng.choice(cities)
        first, last, handle = _random_name(rng, locale)
        domain = rng.choice(_DOMAINS)
        email = f"{handle}@{domain}"
        n = 2
        while email in taken:
            email = f"{handle}{n}@{domain}"
            n += 1
        taken.add(email)
        people.append(
            Person(
                key=f"demo-customer-{i + 1:03d}",
                first=first,
                last=last,
                email=email,
                locale=locale,
                phone=_phone(rng, city.country_code),
                city=city,
                address1=_street_address(rng, city.country_code),
                zip=_fill_pattern(rng, city.zip_pattern),
            )
        )
    return people

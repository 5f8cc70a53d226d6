"""Clean events shaped like the REES46 electronics sample.

Events come in sessions (bursts seconds to minutes apart) separated by long
gaps; most users have one or two sessions; about 91% views, 5% carts, 4%
purchases; a quarter of products have no brand and a third of categories no
code; each product has one price. Everything is vectorised with numpy so ten
million events take seconds.
"""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from eventpipe.fields import UTC_MICROS

# Share of sessions starting in each UTC hour, read off the real sample.
_HOURLY_WEIGHTS = np.array(
    [
        65,
        58,
        43,
        93,
        124,
        162,
        242,
        292,
        294,
        291,
        268,
        302,
        263,
        202,
        243,
        232,
        190,
        227,
        205,
        227,
        150,
        118,
        60,
        53,
    ],
    dtype=float,
)
_TYPES = np.array(["view", "cart", "purchase"])
_TYPE_SHARES = np.array([0.9076, 0.0538, 0.0386])
_CATEGORY_ROOTS = {
    "electronics": [
        "telephone",
        "audio.acoustic",
        "audio.headphone",
        "tablet",
        "video.tv",
        "camera.photo",
        "clocks",
        "smartwatch",
    ],
    "computers": [
        "notebook",
        "desktop",
        "components.cpu",
        "components.videocards",
        "components.motherboard",
        "components.memory",
        "components.hdd",
        "components.cooler",
        "peripherals.printer",
        "peripherals.mouse",
        "peripherals.keyboard",
        "peripherals.monitor",
        "network.router",
    ],
    "appliances": ["kitchen.kettle", "kitchen.microwave", "environment.vacuum", "personal.massager", "iron"],
    "stationery": ["cartrige", "paper"],
    "furniture": ["office.chair", "living_room.cabinet"],
    "auto": ["accessories.player", "accessories.alarm"],
}
_BRANDS = [
    "amd",
    "samsung",
    "canon",
    "asus",
    "sirius",
    "hp",
    "gigabyte",
    "pioneer",
    "panasonic",
    "msi",
    "epson",
    "lg",
    "intel",
    "xiaomi",
    "apple",
    "logitech",
    "kingston",
    "sony",
    "lenovo",
    "acer",
    "tp-link",
    "philips",
    "zalman",
    "pantum",
]

START = datetime(2020, 9, 24, tzinfo=UTC)


def clean_events(events: int, *, days: int, seed: int, start: datetime = START) -> pa.Table:
    """``events`` clean events over ``days`` days, sorted by event time."""
    rng = np.random.default_rng(seed)
    sessions = max(1, int(events / 1.7))
    lengths = np.minimum(rng.zipf(2.5, sessions), 200)
    lengths = _fit_total(lengths, events)
    sessions = len(lengths)

    session_start = _session_starts(rng, sessions, days, start)
    session_of_event = np.repeat(np.arange(sessions), lengths)
    first_of_session = np.cumsum(lengths) - lengths
    gaps = np.clip(rng.lognormal(np.log(90), 1.3, events), 1, 1500).astype(np.int64)
    gaps[first_of_session] = 0
    # seconds since the session's first event: cumulative gaps within the session
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first_of_session], lengths)
    event_us = (session_start[session_of_event] + offset) * 1_000_000

    event_type = _funnel_ordered_types(rng, session_of_event, events)
    users = _users(rng, sessions)[session_of_event]
    products = _Catalog(rng, max(1_000, min(300_000, events // 4)))
    product_idx = products.pick(rng, events)
    session_ids = _session_ids(rng, sessions)

    order = np.argsort(event_us, kind="stable")
    product = product_idx[order]
    return pa.table(
        {
            "event_time": pa.array(event_us[order], UTC_MICROS),
            "event_type": pa.DictionaryArray.from_arrays(event_type[order].astype(np.int8), _TYPES),
            "product_id": products.product_id[product],
            "category_id": products.category_id[product],
            "category_code": products.category_code(product),
            "brand": products.brand(product),
            "price": products.price[product],
            "user_id": users[order],
            "user_session": pa.DictionaryArray.from_arrays(session_of_event[order], session_ids),
        }
    )


def _fit_total(lengths: np.ndarray, events: int) -> np.ndarray:
    """Trim or extend session lengths so they add up to exactly ``events``."""
    total = np.cumsum(lengths)
    if total[-1] >= events:
        keep = int(np.searchsorted(total, events)) + 1
        lengths = lengths[:keep].copy()
        lengths[-1] -= int(lengths.sum()) - events
        return lengths
    return np.append(lengths, np.ones(events - int(total[-1]), dtype=lengths.dtype))


def _session_starts(rng: np.random.Generator, n: int, days: int, start: datetime) -> np.ndarray:
    day = rng.integers(0, max(days, 1), n)
    hour = rng.choice(24, n, p=_HOURLY_WEIGHTS / _HOURLY_WEIGHTS.sum())
    second = rng.integers(0, 3600, n)
    return int(start.timestamp()) + day * 86_400 + hour * 3_600 + second


def _funnel_ordered_types(rng: np.random.Generator, session: np.ndarray, n: int) -> np.ndarray:
    """Draw types independently, then order them view -> cart -> purchase in a session."""
    drawn = rng.choice(len(_TYPES), n, p=_TYPE_SHARES)
    return drawn[np.lexsort((drawn, session))]


def _users(rng: np.random.Generator, sessions: int) -> np.ndarray:
    # Power-law reuse: a few users return often, most come once or twice.
    pool = 4 * sessions
    ids = 1_515_915_625_353_000_000 + rng.integers(0, 1_000_000_000, pool)
    return ids[(pool * rng.random(sessions) ** 1.5).astype(np.int64)]


def _session_ids(rng: np.random.Generator, sessions: int) -> pa.Array:
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "S1")
    chars = alphabet[rng.integers(0, len(alphabet), (sessions, 10))]
    text = pa.py_buffer(chars.tobytes())
    offsets = pa.py_buffer(np.arange(0, 10 * sessions + 1, 10, dtype=np.int32).tobytes())
    missing = rng.random(sessions) < 0.0002
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little").tobytes())
    return pa.StringArray.from_buffers(sessions, offsets, text, validity)


class _Catalog:
    """Products with a fixed category, brand and price each; popularity is skewed."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        codes = [f"{root}.{leaf}" for root, leaves in _CATEGORY_ROOTS.items() for leaf in leaves]
        categories = 620
        category_code = np.array(codes, dtype=object)[rng.integers(0, len(codes), categories)]
        category_code[rng.random(categories) < 0.3] = None
        brands = np.array(_BRANDS + [f"brand{i:03d}" for i in range(800)], dtype=object)
        brand = brands[np.minimum((len(brands) * rng.random(size) ** 2.5).astype(int), len(brands) - 1)]
        brand[rng.random(size) < 0.26] = None
        category = rng.integers(0, categories, size)

        self.product_id = 100_000 + rng.choice(4_900_000, size, replace=False)
        self.category_id = (2_144_415_922_000_000_000 + rng.choice(10**10, categories))[category]
        self.price = np.maximum(np.round(rng.lognormal(np.log(52), 1.35, size), 2), 0.22)
        self._category_code = _dictionary(category_code[category])
        self._brand = _dictionary(brand)
        self._size = size

    def category_code(self, product: np.ndarray) -> pa.DictionaryArray:
        return self._category_code(product)

    def brand(self, product: np.ndarray) -> pa.DictionaryArray:
        return self._brand(product)

    def pick(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum((self._size * rng.random(n) ** 2.5).astype(np.int64), self._size - 1)


def _dictionary(per_product: np.ndarray):
    """A function from product indices to a dictionary-encoded text column.

    Dictionary encoding makes gathering millions of rows a copy of integers, not text.
    """
    encoded = pa.array(per_product, pa.string()).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    codes = np.where(np.isnan(codes.astype(float)), -1, codes).astype(np.int32)

    def gather(product: np.ndarray) -> pa.DictionaryArray:
        picked = codes[product]
        return pa.DictionaryArray.from_arrays(pa.array(picked, mask=picked < 0), encoded.dictionary)

    return gather

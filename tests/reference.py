"""A deliberately simple, independent implementation of silver and gold, in plain Python.

It works on bronze rows as dicts and shares no code with the SQL: loops,
dicts and sorted lists, one rule at a time, as a person would compute the
tables by hand. Tests compare the pipeline's tables with what this returns.
"""

import hashlib
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from eventpipe.fields import EVENT_FIELDS
from eventpipe.settings import Settings

UNIT, NULL = "\x1f", "\x1e"


def canonical_type(raw: str | None, settings: Settings) -> str | None:
    spelling = (raw or "").strip().lower()
    synonyms = {k.strip().lower(): v for k, v in settings.synonyms.items()}
    if spelling in synonyms:
        return synonyms[spelling]
    return spelling if spelling in settings.event_types else None


def rule_broken(row: dict, settings: Settings, now: datetime) -> str | None:
    if row["user_id"] is None:
        return "user_id: missing"
    if canonical_type(row["event_type"], settings) is None:
        return f'event_type: not a known event type: "{row["event_type"] or ""}"'
    if row["price"] is not None and row["price"] < 0:
        return "price: negative"
    if row["event_time"] > now + timedelta(hours=settings.future_tolerance_hours):
        return "event_time: more than the allowed time in the future"
    return None


def text(value) -> str:
    return NULL if value is None else str(value)


def event_id(e: dict) -> str:
    micros = (e["event_time"] - datetime(1970, 1, 1, tzinfo=e["event_time"].tzinfo)) // timedelta(
        microseconds=1
    )
    parts = [
        str(micros),
        e["event_type"],
        text(e["product_id"]),
        text(e["category_id"]),
        text(e["category_code"]),
        text(e["brand"]),
        text(e["price"]),
        str(e["user_id"]),
        text(e["user_session"]),
    ]
    return hashlib.md5(UNIT.join(parts).encode()).hexdigest()


CONTENT = EVENT_FIELDS  # the fields two records must share to be one event


def silver(bronze: list[dict], settings: Settings, now: datetime) -> tuple[list[dict], list[dict]]:
    """(silver events, quarantined rows) from bronze rows."""
    quarantined, kept = [], {}
    for row in sorted(bronze, key=lambda r: (r["_source_file"], r["_source_line"])):
        reason = rule_broken(row, settings, now)
        if reason:
            quarantined.append(
                {"_source_file": row["_source_file"], "_source_line": row["_source_line"], "reason": reason}
            )
            continue
        event = {**row, "event_type": canonical_type(row["event_type"], settings)}
        key = tuple(event[f] for f in CONTENT)
        if key in kept:
            kept[key]["duplicates"] += 1
        else:
            kept[key] = {
                **{f: event[f] for f in CONTENT},
                "duplicates": 0,
                "_source_file": row["_source_file"],
                "_source_line": row["_source_line"],
            }
    events = list(kept.values())
    for e in events:
        e["event_id"] = event_id(e)
        e["event_date"] = e["event_time"].date()
    sessionize(events, settings)
    return events, quarantined


def sessionize(events: list[dict], settings: Settings) -> None:
    timeout = timedelta(minutes=settings.session_timeout_minutes)
    by_user = defaultdict(list)
    for e in events:
        by_user[e["user_id"]].append(e)
    for user, mine in by_user.items():
        mine.sort(key=lambda e: (e["event_time"], e["event_id"]))
        visit_start = session_first = previous = None
        for e in mine:
            if previous is None or e["event_time"] - previous["event_time"] > timeout:
                visit_start = session_first = e
            elif settings.max_session_minutes:
                # a maximum length cuts the visit into pieces of that length from its start
                limit = timedelta(minutes=settings.max_session_minutes)
                piece = (e["event_time"] - visit_start["event_time"]) // limit
                if piece != (previous["event_time"] - visit_start["event_time"]) // limit:
                    session_first = e
            e["session_id"] = hashlib.md5(f"{user}:{session_first['event_id']}".encode()).hexdigest()
            previous = e


def revenue(events: list[dict], kind: str) -> float:
    return float(sum((Decimal(repr(e["price"])) for e in events if e["event_type"] == kind), Decimal(0)))


def first(events: list[dict], kind: str) -> datetime | None:
    return min((e["event_time"] for e in events if e["event_type"] == kind), default=None)


def count(events: list[dict], kind: str) -> int:
    return sum(1 for e in events if e["event_type"] == kind)


def sessions(events: list[dict], settings: Settings) -> list[dict]:
    grouped = defaultdict(list)
    for e in events:
        grouped[e["session_id"]].append(e)
    rows = []
    for session_id, mine in grouped.items():
        start = min(e["event_time"] for e in mine)
        end = max(e["event_time"] for e in mine)
        rows.append(
            {
                "session_id": session_id,
                "user_id": mine[0]["user_id"],
                "session_start": start,
                "session_end": end,
                "session_date": start.date(),
                "events_count": len(mine),
                "unique_event_types": len({e["event_type"] for e in mine}),
                "session_length_minutes": (end - start).total_seconds() / 60,
                **{f"{t}s": count(mine, t) for t in settings.event_types},
                **{f"first_{t}_at": first(mine, t) for t in settings.event_types},
                "revenue": revenue(mine, settings.revenue_type),
                "converted": count(mine, settings.revenue_type) > 0,
            }
        )
    return rows


def gold(events: list[dict], session_rows: list[dict], settings: Settings) -> dict[str, list[dict]]:
    by_minute, by_type, by_user, by_day = (defaultdict(list) for _ in range(4))
    for e in events:
        by_minute[e["event_time"].replace(second=0, microsecond=0)].append(e)
        by_type[e["event_type"]].append(e)
        by_user[e["user_id"]].append(e)
        by_day[e["event_date"]].append(e)
    sessions_by_day = defaultdict(list)
    session_dates = {s["session_id"]: s["session_date"] for s in session_rows}
    user_steps = step_times(events, "user_id", settings.funnel_steps)
    entered_columns = [f"entered_{s}_at" for s in settings.funnel_steps]
    for s in session_rows:
        sessions_by_day[s["session_date"]].append(s)
    orders = settings.revenue_type
    return {
        "events_by_minute": [
            {"minute": m, "events_count": len(es), **{t: count(es, t) for t in settings.event_types}}
            for m, es in by_minute.items()
        ],
        "events_by_type": [
            {"event_type": t, "events_count": len(es), "users": len({e["user_id"] for e in es})}
            for t, es in by_type.items()
        ],
        "user_funnel": [
            {
                "user_id": u,
                **{f"{t}s": count(es, t) for t in settings.event_types},
                "revenue": revenue(es, settings.revenue_type),
                **dict(zip(entered_columns, user_steps.get(u, [None] * len(entered_columns)), strict=True)),
            }
            for u, es in by_user.items()
        ],
        "sessions_daily": [
            {
                "date": d,
                "sessions": len(ss),
                "users": len({s["user_id"] for s in ss}),
                "median_session_minutes": statistics.median(s["session_length_minutes"] for s in ss),
                "mean_session_minutes": statistics.fmean(s["session_length_minutes"] for s in ss),
                "bounce_rate": sum(s["events_count"] == 1 for s in ss) / len(ss),
                "conversion_rate": sum(s["converted"] for s in ss) / len(ss),
            }
            for d, ss in sessions_by_day.items()
        ],
        "daily_metrics": [
            {
                "date": d,
                "active_users": len({e["user_id"] for e in es}),
                "events": len(es),
                f"{orders}s": count(es, orders),
                "revenue": revenue(es, orders),
                "average_order_value": revenue(es, orders) / count(es, orders) if count(es, orders) else None,
            }
            for d, es in by_day.items()
        ],
        "funnel_sessions": [
            {
                "session_id": k,
                "session_date": session_dates[k],
                **dict(zip(entered_columns, times, strict=True)),
            }
            for k, times in step_times(events, "session_id", settings.funnel_steps).items()
        ],
        "funnel": funnel(events, settings.funnel_steps),
    }


def step_times(events: list[dict], key: str, steps: list[str]) -> dict[object, list]:
    """Per entity that entered the first step: when it entered each step, in order (None once it stops)."""
    grouped = defaultdict(list)
    for e in events:
        grouped[e[key]].append(e)
    entered = {}
    for entity, mine in grouped.items():
        times, at = [], None
        for index, step in enumerate(steps):
            later = sorted(
                e["event_time"]
                for e in mine
                if e["event_type"] == step and (index == 0 or (at is not None and e["event_time"] >= at))
            )
            at = later[0] if later else None
            times.append(at)
        if times[0] is not None:
            entered[entity] = times
    return entered


def funnel(events: list[dict], steps: list[str]) -> list[dict]:
    rows = []
    for level, key in (("session", "session_id"), ("user", "user_id")):
        grouped = defaultdict(list)
        for e in events:
            grouped[e[key]].append(e)
        reached_at = defaultdict(list)  # step index -> [(time entered previous, time entered this)]
        for mine in grouped.values():
            mine = sorted(mine, key=lambda e: e["event_time"])
            at = None
            for index, step in enumerate(steps):
                later = [
                    e["event_time"]
                    for e in mine
                    if e["event_type"] == step and (at is None or e["event_time"] >= at)
                ]
                if not later:
                    break
                reached_at[index].append((at, later[0]))
                at = later[0]
        first = len(reached_at[0])
        for index, step in enumerate(steps):
            entered = len(reached_at[index])
            previous = len(reached_at[index - 1]) if index else None
            rows.append(
                {
                    "level": level,
                    "step_number": index + 1,
                    "step": step,
                    "entered": entered,
                    "conversion_from_previous": entered / previous if previous else None,
                    "conversion_from_first": entered / first if first else None,
                    "median_seconds_from_previous": statistics.median(
                        (b - a).total_seconds() for a, b in reached_at[index]
                    )
                    if index and reached_at[index]
                    else None,
                }
            )
    return rows

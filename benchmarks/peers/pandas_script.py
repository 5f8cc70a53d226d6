"""The old pandas scripts' logic: the baseline eventpipe grew out of.

    python benchmarks/peers/pandas_script.py EVENTS.csv[.gz ...] OUT_DIR

Read the CSVs, split them by day, standardize event types, sessionize with
groupby/shift/cumsum (30-minute gap) and pivot the gold tables, writing CSVs.
No deduplication and no quarantine, as the old scripts did. Prints
``events=N sessions=M``.
"""

import sys
from pathlib import Path

import pandas as pd

TIMEOUT = pd.Timedelta(minutes=30)


def main(sources: list[str], out: Path) -> None:
    events = pd.concat([pd.read_csv(source) for source in sources], ignore_index=True)
    events["event_time"] = pd.to_datetime(events["event_time"], format="%Y-%m-%d %H:%M:%S UTC", utc=True)
    days = []
    for _, day in events.groupby(events["event_time"].dt.date):
        day = day.copy()
        day["event_type"] = day["event_type"].str.strip().str.lower()
        days.append(day)
    silver = pd.concat(days).sort_values(["user_id", "event_time"])
    gap = silver.groupby("user_id")["event_time"].diff()
    silver["session_number"] = (gap.isna() | (gap > TIMEOUT)).astype(int).groupby(silver["user_id"]).cumsum()
    sessions = silver.groupby(["user_id", "session_number"]).agg(
        session_start=("event_time", "min"),
        session_end=("event_time", "max"),
        events_count=("event_type", "size"),
        unique_event_types=("event_type", "nunique"),
    )
    sessions["session_length_minutes"] = (
        sessions["session_end"] - sessions["session_start"]
    ).dt.total_seconds() / 60

    (out / "silver").mkdir(parents=True, exist_ok=True)
    (out / "gold").mkdir(parents=True, exist_ok=True)
    silver.to_csv(out / "silver" / "events_silver.csv", index=False)
    sessions.reset_index().to_csv(out / "silver" / "sessions.csv", index=False)
    by_minute = silver.groupby(silver["event_time"].dt.floor("min")).size().rename("events_count")
    by_minute.rename_axis("minute").reset_index().to_csv(out / "gold" / "events_by_minute.csv", index=False)
    silver["event_type"].value_counts().rename_axis("event_type").rename("events_count").reset_index().to_csv(
        out / "gold" / "events_by_type.csv", index=False
    )
    funnel = silver.pivot_table(index="user_id", columns="event_type", aggfunc="size", fill_value=0)
    funnel = funnel.rename(columns={"view": "views", "cart": "carts", "purchase": "purchases"})
    funnel.reindex(columns=["carts", "purchases", "views"], fill_value=0).reset_index().to_csv(
        out / "gold" / "user_funnel.csv", index=False
    )
    print(f"events={len(silver)} sessions={len(sessions)}")


if __name__ == "__main__":
    main(sys.argv[1:-1], Path(sys.argv[-1]))

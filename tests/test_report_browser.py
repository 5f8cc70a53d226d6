"""The HTML report in a real headless Chromium: it renders, it agrees with queries, it is escaped."""

import json
import os
import shutil
from pathlib import Path

import pytest

from eventpipe.query import run_query
from eventpipe.settings import Settings

from .conftest import REPO, run_cli
from .steps import write_html_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
HOSTILE_BRANDS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>']
# what the probe of this machine's Chromium needed: no sandbox as root, no background network
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs the Debian package")
        pytest.skip("chromium is not installed (Debian package `chromium`; `make test` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_report(browser, path: Path):
    """The page, with the console errors, page errors and dialogs it produced while loading."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"console": [], "errors": [], "dialogs": [], "requests": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))

    def dismiss(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)  # screenshots are kept there for a look after the run
    return page, seen


# In a chart's SVG (matplotlib: axes as g#axes_N, each with its background as its first patch,
# legends as g#legend_N): pairs of text boxes that overlap, and legends over a plotting area.
OVERLAPS = """
svg => {
    const box = e => e.getBoundingClientRect();
    const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1
        && b.top < a.bottom - 1;
    const texts = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim());
    const found = [];
    texts.forEach((a, i) => texts.slice(i + 1).forEach(b => {
        if (meets(box(a), box(b))) found.push(`text "${a.textContent}" on "${b.textContent}"`);
    }));
    const areas = [...svg.querySelectorAll("g[id^=axes_] > g[id^=patch_]:first-of-type")].map(box);
    for (const legend of svg.querySelectorAll("g[id^=legend_]"))
        if (areas.some(area => meets(box(legend), area))) found.push("legend over the plot");
    return found;
}
"""


def overlaps(svg) -> list[str]:
    return svg.evaluate(OVERLAPS)


def test_the_sample_report_renders_every_chart_and_matches_queries(browser, tmp_path, sample_dir):
    warehouse = tmp_path / "wh"
    ran = run_cli("run", "-s", str(sample_dir / "events_raw.csv.gz"), "-w", str(warehouse), "-q", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    report = warehouse / "_reports" / f"{run_id}.html"
    assert f"HTML report: {report}" in ran.stderr
    assert report.stat().st_size < 2_000_000

    page, seen = open_report(browser, report)
    page.screenshot(path=str(ARTIFACTS / "report-sample.png"), full_page=True)
    assert seen["console"] == [] and seen["errors"] == []
    assert all(url.startswith("file://") for url in seen["requests"]), seen["requests"]

    charts = page.locator("figure.chart")
    names = charts.evaluate_all("figures => figures.map(f => f.dataset.chart)")
    assert set(names) >= {
        "events_over_time",
        "funnel",
        "session_lengths",
        "sessions_daily",
        "daily_users_revenue",
        "daily_order_value",
        "top_brand_by_views",
        "top_brand_by_purchases",
        "top_category_code_by_views",
        "top_category_code_by_purchases",
    }
    for name in names:
        svg = page.locator(f'figure[data-chart="{name}"] svg')
        assert svg.count() == 1, name
        box = svg.bounding_box()
        assert box["width"] > 100 and box["height"] > 100, name
        assert svg.locator("path, rect, use").count() > 10, name  # drawn marks, not an empty frame
        assert overlaps(svg) == [], name

    settings = Settings.load(warehouse=warehouse)

    def query(sql: str):
        return run_query(settings, sql).to_pylist()[0]["v"]

    expected = {
        "bronze_rows": query("SELECT count(*) AS v FROM bronze_events"),
        "quarantined": query("SELECT count(*) AS v FROM quarantine"),
        "silver_events": query("SELECT count(*) AS v FROM silver_events"),
        "duplicates_removed": query("SELECT sum(duplicates) AS v FROM silver_events"),
        "sessions": query("SELECT count(*) AS v FROM sessions"),
        "users": query("SELECT count(DISTINCT user_id) AS v FROM silver_events"),
        "orders": query("SELECT count(*) AS v FROM silver_events WHERE event_type = 'purchase'"),
    }
    for key, value in expected.items():
        shown = page.locator(f'[data-total="{key}"]').inner_text()
        assert int(shown.replace(",", "")) == value, key
    revenue = query("SELECT sum(price) AS v FROM silver_events WHERE event_type = 'purchase'")
    assert page.locator('[data-total="revenue"]').inner_text() == f"{revenue:,.2f}"
    user_views = query("SELECT count(DISTINCT user_id) AS v FROM silver_events WHERE event_type = 'view'")
    assert page.locator('[data-funnel="user-view"]').inner_text() == f"{user_views:,}"
    statuses = page.locator("[data-check]").evaluate_all(
        "cells => Object.fromEntries(cells.map(c => [c.dataset.check, c.innerText]))"
    )
    assert statuses["conservation"] == "pass" and statuses["freshness"] == "warn"


def test_hostile_brands_are_shown_as_text_and_never_run(browser, tmp_path):
    lines = [HEADER]
    for user, brand in enumerate(HOSTILE_BRANDS, start=1):
        quoted = '"' + brand.replace('"', '""') + '"'
        for minute, kind in enumerate(["view", "view", "cart", "purchase"]):
            lines.append(f"2020-10-01 10:0{minute}:00 UTC,{kind},{user},7,<b>cat</b>,{quoted},9.5,{user},s")
    lines.append("2020-10-01 10:09:00 UTC,<script>alert(3)</script>,1,7,,acme,1.0,3,s")
    source = tmp_path / "hostile.csv"
    source.write_text("\n".join(lines) + "\n")
    settings = Settings.load(warehouse=tmp_path / "wh")
    ran = run_cli("run", "-s", str(source), "-w", str(settings.warehouse), "-q", "--no-report")
    assert ran.returncode == 0, ran.stderr
    report = write_html_report(settings, tmp_path / "hostile.html")

    page, seen = open_report(browser, report.path)
    page.screenshot(path=str(ARTIFACTS / "report-hostile.png"), full_page=True)
    assert seen["dialogs"] == [] and seen["errors"] == []
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.locator("b").count() == 0
    brands = page.locator('table[data-top="brand_by_views"] td:first-child').all_inner_texts()
    assert sorted(brands) == sorted(HOSTILE_BRANDS)
    chart_text = page.locator('figure[data-chart="top_brand_by_views"] svg').text_content()
    assert all(brand in chart_text for brand in HOSTILE_BRANDS)
    body = page.locator("body").inner_text()
    assert "<script>alert(3)</script>" in body  # the quarantine reason and raw record, as text
    assert "<b>cat</b>" in body

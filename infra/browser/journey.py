"""A person's journey through the connect and data pages, in headless
Chromium driven by Playwright, at a phone width and a desktop width.

Run by infra/tests/browser.rs against a local stack whose vendors are the
simulator (consent pages on). Fails on any console error, page error, failed
request, answer of 400 or more, or request to another origin; saves a
screenshot of every step in BROWSER_SCREENSHOTS.
"""

import json
import os
import re
import sys
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["BROWSER_BASE"]
SIM = os.environ["BROWSER_SIM"]
SHOTS = os.environ["BROWSER_SCREENSHOTS"]
CHROMIUM = os.environ["BROWSER_CHROMIUM"]
USERS = json.loads(os.environ["BROWSER_USERS"])

VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
DAILY = ["hrv", "resting_hr", "sleep_score", "steps", "calories", "stress"]
POINTS = ["sleep_duration", "glucose"]
SUMMED = {"steps", "calories"}
# What the Debian Chromium needs on these machines: no sandbox as root, and
# none of the background traffic a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = 90_000

problems = []


def api(token, path, body=None):
    headers = {"authorization": "Bearer " + token}
    data = None
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def sim(path):
    """A control of the vendor simulator (what a person does at the vendor)."""
    req = urllib.request.Request(SIM + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def on_the_connect_page(page):
    page.wait_for_url(re.compile(re.escape(BASE) + r"/v1/connect(\?.*)?$"))


def consent(page, decision):
    """At the vendor's consent page: the account signed in, then Allow or Deny."""
    page.wait_for_url(lambda url: url.startswith(SIM))
    account = page.locator("#account").text_content()
    page.get_by_role("button", name=decision).click()
    on_the_connect_page(page)
    return account


def origin(url):
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def watch(page, kind):
    allowed = {origin(BASE), origin(SIM)}

    def on_request(r):
        if r.url.startswith("data:"):
            return
        if origin(r.url) not in allowed:
            problems.append(f"{kind}: request to another origin: {r.url}")

    page.on("request", on_request)
    page.on(
        "console",
        lambda m: m.type == "error"
        and problems.append(f"{kind}: console error at {m.location.get('url')}: {m.text}"),
    )
    page.on("pageerror", lambda e: problems.append(f"{kind}: page error: {e}"))
    page.on(
        "requestfailed",
        lambda r: problems.append(f"{kind}: request failed: {r.method} {r.url}: {r.failure}"),
    )
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"{kind}: {r.status} for {r.request.method} {r.url}"),
    )


# Text a person reads must stand out from its background (WCAG AA, 4.5:1),
# and every control must have a name.
ACCESSIBILITY = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const text = walk.currentNode.textContent.trim();
    const el = walk.currentNode.parentElement;
    if (!text || !el.getClientRects().length || el.closest('[hidden], details:not([open]) > :not(summary)')) continue;
    const [hi, lo] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) bad.push(`contrast ${ratio.toFixed(2)}: ${text.slice(0, 40)}`);
  }
  for (const c of document.querySelectorAll('button, select, input, a')) {
    const named = (c.textContent || '').trim() || c.getAttribute('aria-label') || (c.labels && c.labels.length);
    if (!named) bad.push(`unnamed control: ${c.outerHTML.slice(0, 60)}`);
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    bad.push(`wider than the screen: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  return bad;
}"""


def accessible(page, kind, step):
    for p in page.evaluate(ACCESSIBILITY):
        problems.append(f"{kind} {step}: {p}")


def shown_number(text):
    return float(text.replace(",", ""))


def disagreeing_days(points, metric):
    by_day = {}
    for p in points:
        by_day.setdefault(p["date"], {}).setdefault(p["source"], []).append(p["value"])
    out = set()
    for date, sources in by_day.items():
        if len(sources) < 2:
            continue
        values = [sum(v) if metric in SUMMED else sum(v) / len(v) for v in sources.values()]
        hi = max(abs(v) for v in values)
        if hi > 0 and (max(values) - min(values)) / hi > 0.1:
            out.add(date)
    return out


def metrics(token, types, since, until):
    series = {t: [] for t in types}
    cursor = None
    while True:
        q = {"types": ",".join(types), "since": since, "until": until, "limit": "5000"}
        if cursor:
            q["cursor"] = cursor
        page = api(token, "/v1/metrics?" + urllib.parse.urlencode(q))
        for s in page["series"]:
            series[s["type"]].extend(s["points"])
        cursor = page["next_cursor"]
        if not cursor:
            return series


def numbers_match_the_api(page, token, days):
    """Every value the data page shows is the API's, with its source."""
    report = api(token, f"/v1/reports?days={days}")
    series = metrics(token, DAILY + POINTS, report["from"], report["to"])
    checked = 0
    for metric in DAILY:
        want = [
            (r["date"], r[metric], r["sources"].get(metric, "unknown"))
            for r in reversed(report["reports"])
            if r.get(metric) is not None
        ]
        rows = page.locator(f'figure[data-metric="{metric}"] tbody tr')
        got = []
        for i in range(rows.count()):
            row = rows.nth(i)
            cell = row.locator("td.value")
            raw = float(cell.get_attribute("data-value"))
            shown = shown_number(cell.text_content())
            assert abs(shown - round(raw, 2)) < 0.006, f"{metric}: shown {shown}, value {raw}"
            source = row.locator("td.source").text_content().split(" ◆")[0]
            got.append((row.get_attribute("data-date"), raw, source))
        assert got == want, f"{metric} on {days} days: page {got} != API {want}"
        marked = {
            rows.nth(i).get_attribute("data-date")
            for i in range(rows.count())
            if rows.nth(i).get_attribute("data-disagree") == "true"
        }
        expected = disagreeing_days(series[metric], metric) & {d for d, _, _ in want}
        assert marked == expected, f"{metric}: marked {sorted(marked)} != {sorted(expected)}"
        checked += len(got)
    for metric in POINTS:
        points = series[metric]
        rows = page.locator(f'figure[data-metric="{metric}"] tbody tr')
        assert rows.count() == len(points), f"{metric}: {rows.count()} rows, API {len(points)}"
        shown = sorted(
            (rows.nth(i).get_attribute("data-date"), float(rows.nth(i).locator("td.value").get_attribute("data-value")),
             rows.nth(i).locator("td.source").text_content())
            for i in range(rows.count())
        )
        assert shown == sorted((p["date"], p["value"], p["source"]) for p in points), f"{metric} differs from the API"
        checked += len(points)
    workouts = api(token, f"/v1/workouts?since={report['from']}&until={report['to']}")["workouts"]
    assert page.locator("#workouts li[data-date]").count() == len(workouts), "workouts differ"
    providers = {p["id"]: p for p in api(token, "/v1/providers")["providers"]}
    for li in page.locator("#connections li[data-vendor]").all():
        assert providers[li.get_attribute("data-vendor")]["status"] == li.get_attribute("data-state")
    return checked


def journey(browser, kind, token):
    context = browser.new_context(viewport=VIEWPORTS[kind], is_mobile=kind == "phone", has_touch=kind == "phone")
    context.set_default_timeout(30_000)
    page = context.new_page()
    watch(page, kind)
    try:
        return steps(page, kind, token)
    except Exception:
        # What the person saw when it failed.
        page.screenshot(path=os.path.join(SHOTS, f"{kind}-failed.png"), full_page=True)
        print(f"{kind}: failed at {page.url}; the page's text:\n{page.locator('body').inner_text()[:3000]}")
        raise
    finally:
        context.close()


def steps(page, kind, token):

    def shot(step):
        page.screenshot(path=os.path.join(SHOTS, f"{kind}-{step}.png"), full_page=True)

    # The app opens the page with its user's JWT in the fragment; the page
    # keeps it and takes it out of the address bar.
    page.goto(f"{BASE}/v1/connect#token={token}")
    assert "token" not in page.url, page.url
    mock = page.locator('li[data-vendor="mock"]')
    whoop = page.locator('li[data-vendor="whoop"]')
    expect(mock).to_have_attribute("data-state", "disconnected")
    expect(page.locator("li.vendor")).to_have_count(len(api(token, "/v1/providers")["providers"]))
    accessible(page, kind, "connect")
    shot("01-connect")

    # Mock connects at once; its backfill is shown until done.
    mock.get_by_role("button", name="Connect Mock").click()
    expect(mock).to_have_attribute("data-state", "connected")
    expect(mock.locator("[data-backfill]")).to_have_attribute("data-backfill", "done", timeout=SLOW)
    expect(mock.locator(".progress")).to_contain_text("History pulled")
    shot("02-mock-connected")

    # WHOOP through the simulator's consent page and back; the page
    # completes the connection with the user's JWT.
    whoop.get_by_role("button", name="Connect WHOOP").click()
    page.wait_for_url(lambda url: url.startswith(SIM))
    shot("03-whoop-consent")
    account = consent(page, "Allow")
    expect(page.locator("#notice")).to_contain_text("WHOOP is connected")
    expect(whoop).to_have_attribute("data-state", "connected")
    assert "completion" not in page.url, page.url
    expect(whoop.locator("[data-backfill]")).to_have_attribute("data-backfill", "done", timeout=SLOW)
    backfill = next(c for c in api(token, "/v1/connections")["connections"] if c["vendor"] == "whoop")["backfill"]
    expect(whoop.locator(".progress")).to_contain_text(f"{backfill['days_done']} of {backfill['days_asked']} days")
    accessible(page, kind, "connected")
    shot("04-whoop-connected")

    # The person removes the app at WHOOP; the next sync finds out. The
    # page says so in plain words and offers Reconnect.
    sim(f"/whoop/_sim/remove-app?user={urllib.parse.quote(account)}")
    api(token, "/v1/sync", {"vendor": "whoop"})
    for _ in range(60):
        page.reload()
        if whoop.get_attribute("data-state") != "connected":
            break
        page.wait_for_timeout(1000)
    state = whoop.get_attribute("data-state")
    words = {
        "refresh_failed": "WHOOP ended the connection when it was renewed. Reconnect to go on syncing.",
        "revoked": "Access was removed at WHOOP. Reconnect to go on syncing.",
    }
    assert state in words, f"after the app was removed at WHOOP: {state}"
    assert state == next(p for p in api(token, "/v1/providers")["providers"] if p["id"] == "whoop")["status"]
    expect(whoop.locator(".state")).to_have_text(words[state])
    accessible(page, kind, "needs reconnect")
    shot("05-whoop-needs-reconnect")
    whoop.get_by_role("button", name="Reconnect WHOOP").click()
    consent(page, "Allow")
    expect(whoop).to_have_attribute("data-state", "connected")
    shot("06-whoop-reconnected")

    # Disconnect, with the keyboard.
    whoop.get_by_role("button", name="Disconnect WHOOP").focus()
    page.keyboard.press("Enter")
    expect(whoop).to_have_attribute("data-state", "disconnected")
    expect(page.locator("#notice")).to_contain_text("WHOOP is disconnected")
    assert not any(c["vendor"] == "whoop" for c in api(token, "/v1/connections")["connections"])
    shot("07-whoop-disconnected")

    # The person refuses at WHOOP: a sentence, a retry, nothing connected.
    whoop.get_by_role("button", name="Connect WHOOP").click()
    consent(page, "Deny")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("You did not allow access at WHOOP, so nothing was connected.")
    expect(notice.get_by_role("button", name="Try again")).to_be_visible()
    expect(whoop).to_have_attribute("data-state", "disconnected")
    accessible(page, kind, "refused")
    shot("08-consent-refused")

    # Terra asks which wearable to connect through it.
    terra = page.locator('li[data-vendor="terra"]')
    terra.get_by_label("Wearable").select_option("OURA")
    terra.get_by_role("button", name="Connect Terra").click()
    on_the_connect_page(page)
    expect(terra).to_have_attribute("data-state", "connected")
    expect(terra.locator("[data-backfill]")).to_have_attribute("data-backfill", "done", timeout=SLOW)
    shot("09-terra-connected")

    # The data page: the API's numbers, point by point.
    page.get_by_role("link", name="See your data").click()
    page.wait_for_url(f"{BASE}/v1/dashboard")
    charts = page.locator("#charts")
    expect(charts).to_have_attribute("aria-busy", "false")
    expect(page.locator('figure[data-metric="hrv"] tbody tr').first).to_be_attached()
    counted = numbers_match_the_api(page, token, 14)
    hover = page.locator('figure[data-metric="hrv"] .hover')
    page.locator('figure[data-metric="hrv"] .u-over').hover()
    expect(hover).to_contain_text(" from ")
    page.locator('figure[data-metric="hrv"] .plot').focus()
    page.keyboard.press("ArrowLeft")
    expect(hover).to_contain_text(" from ")
    accessible(page, kind, "dashboard")
    shot("10-dashboard")
    page.get_by_role("button", name="30 days").click()
    expect(page.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
    expect(charts).to_have_attribute("aria-busy", "false")
    counted += numbers_match_the_api(page, token, 30)
    shot("11-dashboard-30-days")
    return counted


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        print(f"Chromium {browser.version}")
        for kind, token in USERS.items():
            try:
                counted = journey(browser, kind, token)
                print(f"{kind}: journey done, {counted} values on the data page equal the API's")
            except Exception as e:  # noqa: BLE001 - every failure is reported with the others
                problems.append(f"{kind}: {type(e).__name__}: {e}")
        browser.close()
    for p in problems:
        print("PROBLEM", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

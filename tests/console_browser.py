#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drive the anole console's page in Debian's headless Chromium (selenium +
chromium-driver), as an operator would, and check what the page shows.

    console_browser.py URL --user U --password P --host H [--host H2 ...]
                       [--diag-host H] [--shots DIR] [--hosts-only] [--json]

Steps: log in; see every --host in the host list; open the first (or
--diag-host); see a chart with points; run runqlat for 2 s and see its
histogram; see the diagnosis in the audit log; add an alert rule with a
label value that is markup and see it listed as text. Screenshots of each step go
to --shots. With --hosts-only it stops after the host list (the bench uses
it for 200 hosts); with --no-diag it stops after the charts. --json prints the timings measured in the page (the
bench's figures). Exit status 1 with a message on the first failed check.
"""
import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# seconds past --duration an agent lets a diagnosis run before it kills it
# and reports it failed (KILL_GRACE, monitor/console_agent.c)
AGENT_KILL_GRACE = 30


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def browser(args):
    opts = webdriver.ChromeOptions()
    opts.binary_location = args.chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update",
              f"--user-data-dir={args.profile}"):
        opts.add_argument(a)
    service = Service(executable_path=args.chromedriver, log_output=os.devnull) \
        if "log_output" in Service.__init__.__code__.co_varnames \
        else Service(executable_path=args.chromedriver, log_path=os.devnull)
    return webdriver.Chrome(service=service, options=opts)


class Page:
    def __init__(self, d, shots, timeout):
        self.d, self.shots, self.timeout, self.n = d, shots, timeout, 0

    def shot(self, name):
        if self.shots:
            self.n += 1
            self.d.save_screenshot(os.path.join(self.shots, f"{self.n:02d}-{name}.png"))

    def wait(self, what, cond, timeout=None):
        try:
            return WebDriverWait(self.d, timeout or self.timeout, poll_frequency=0.05).until(lambda d: cond())
        except TimeoutException:
            self.shot("failed-" + what.replace(" ", "-")[:40])
            msg = self.d.execute_script("const m=document.querySelector('#msg');return m&&!m.hidden?m.textContent:''")
            fail(f"{what}: not seen within {timeout or self.timeout} s" + (f" (page says: {msg})" if msg else ""))

    def js(self, script, *a):
        return self.d.execute_script(script, *a)


def mark_ms(p, name):
    return p.js("const e=performance.getEntriesByName(arguments[0]);return e.length?e[e.length-1].startTime:null", name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", action="append", default=[], required=True)
    ap.add_argument("--diag-host")
    ap.add_argument("--diag-duration", type=int, default=2)
    ap.add_argument("--shots")
    ap.add_argument("--hosts-only", action="store_true")
    ap.add_argument("--chart-range", type=int, default=3600)
    ap.add_argument("--no-diag", action="store_true", help="stop after the charts")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    if not args.profile:
        import tempfile
        args.profile = tempfile.mkdtemp(prefix="anole-chromium.")
    url = args.url.rstrip("/") + "/"
    figures = {}
    try:
        d = browser(args)
    except WebDriverException as e:
        fail(f"cannot start chromium through chromedriver: {e.msg}")
    p = Page(d, args.shots, args.timeout)
    try:
        # ---- log in
        d.get(url + "#/login")
        p.wait("the login form", lambda: d.find_elements(By.ID, "login-form"))
        p.shot("login")
        d.find_element(By.ID, "login-user").send_keys(args.user)
        d.find_element(By.ID, "login-password").send_keys(args.password)
        d.find_element(By.ID, "login-submit").click()
        p.wait("the host list after logging in", lambda: d.find_elements(By.CSS_SELECTOR, "#hosts tbody"))
        cookies = {c["name"]: c for c in d.get_cookies()}
        if "csrf_token" not in cookies:
            fail(f"login set no csrf_token cookie (cookies: {sorted(cookies)})")

        # ---- the host list: every host, and time to first render on a reload
        want = set(args.host)

        def listed():
            rows = p.js("return [...document.querySelectorAll('#hosts tr.host')].map(r => [r.dataset.host, r.querySelector('.status').textContent])")
            return {h: s for h, s in rows} if want <= {h for h, _ in rows} else None
        rows = p.wait(f"hosts {sorted(want)} in the list", listed)
        p.wait("every host up", lambda: all(s == "up" for h, s in (listed() or {}).items() if h in want)
               or (d.refresh() and False))
        d.refresh()
        p.wait("the host list after a reload", lambda: len(listed() or {}) >= len(want))
        figures["hosts_first_render_ms"] = mark_ms(p, "anole:hosts-rendered")
        figures["hosts_listed"] = len(listed())
        p.shot("hosts")
        print(f"host list: {figures['hosts_listed']} hosts, first render "
              f"{figures['hosts_first_render_ms']:.0f} ms after navigation")
        if args.hosts_only:
            return figures

        # ---- one host: a chart with points
        host = args.diag_host or args.host[0]
        link = p.wait(f"the link to {host}", lambda: [a for a in d.find_elements(By.CSS_SELECTOR, "a.hostlink") if a.text == host])
        link[0].click()
        p.wait("the host page", lambda: d.find_elements(By.ID, "range"))
        p.wait("the charts", lambda: p.js("const c=document.getElementById('charts');return c&&c.dataset.ready==='1'"))
        if args.chart_range != 3600:
            Select(d.find_element(By.ID, "range")).select_by_value(str(args.chart_range))
            p.wait(f"the charts of {args.chart_range} s", lambda: p.js(
                "const c=document.getElementById('charts');return c&&c.dataset.ready==='1'"))

        def plotted():
            return p.js("""return [...document.querySelectorAll('#charts canvas')].map(c => {
                const ch = Chart.getChart(c); return [c.id, ch ? ch.data.datasets.reduce((a, d) => a + d.data.length, 0) : 0]; })""")
        # the embedded store needs two scrapes for a rate (CPU); memory has points after one
        counts = p.wait("a chart with points", lambda: (lambda c: c if any(n > 0 for _, n in c) else
                                                        (d.refresh(), time.sleep(1)) and None)(plotted()))
        counts = dict(counts)
        figures["chart_points"] = counts
        # the last drawing: its fetches of every series and the drawing itself
        start, done = mark_ms(p, "anole:charts-start"), mark_ms(p, "anole:charts-rendered")
        if start is not None and done is not None:
            figures["charts_render_ms"] = done - start
        figures["chart_fetch_ms"] = p.js("return Object.fromEntries([...document.querySelectorAll('#charts .chart')].map(b => [b.dataset.chart, Number(b.dataset.fetchMs || -1)]))")
        figures["chart_draw_ms"] = p.js("return Object.fromEntries([...document.querySelectorAll('#charts .chart')].map(b => [b.dataset.chart, Number(b.dataset.drawMs || -1)]))")
        p.shot("host")
        if args.no_diag:
            return figures
        print(f"host {host}: chart points {counts}" +
              (f", charts drawn in {figures['charts_render_ms']:.0f} ms" if "charts_render_ms" in figures else ""))

        # ---- diagnose: runqlat for 2 s, its histogram
        Select(d.find_element(By.ID, "diag-tool")).select_by_value("runqlat")
        dur = d.find_element(By.ID, "diag-duration")
        dur.clear()
        dur.send_keys(str(args.diag_duration))
        t0 = time.monotonic()
        d.find_element(By.ID, "diag-run").click()
        # the agent's own bound on the run, then a step's time to see its end:
        # a slow tool start ends as the agent's reason, not as this wait's
        p.wait("the runqlat result", lambda: p.js("const f=document.getElementById('diag-form');return f.dataset.status"),
               timeout=args.diag_duration + AGENT_KILL_GRACE + args.timeout)
        figures["diagnosis_round_trip_s"] = time.monotonic() - t0
        in_page = p.js("return document.getElementById('diag-form').dataset.roundTrip")
        if in_page:
            figures["diagnosis_round_trip_in_page_s"] = float(in_page)
        status = p.js("return document.getElementById('diag-status').textContent")
        if p.js("return document.getElementById('diag-form').dataset.status") != "done":
            p.shot("diagnosis-failed")
            fail(f"the diagnosis did not succeed: {status}")
        hist = p.wait("the histogram", lambda: p.js("""const h=document.querySelector('#diag-result .histchart');
            if (!h) return null; const ch=Chart.getChart(h.querySelector('canvas'));
            return ch ? {buckets: ch.data.labels.length, total: ch.data.datasets[0].data.reduce((a,b)=>a+b,0)} : null"""))
        if hist["buckets"] < 1 or hist["total"] < 1:
            fail(f"the runqlat histogram is empty: {hist}")
        figures["histogram"] = hist
        p.js("document.getElementById('diag-result').scrollIntoView()")
        p.shot("runqlat")
        print(f"runqlat {args.diag_duration} s: {status}; histogram {hist['buckets']} buckets, "
              f"{hist['total']} events; click to result {figures['diagnosis_round_trip_s']:.2f} s")

        # ---- the audit log shows it
        d.get(url + "#/audit")

        def audited():
            rows = p.js("return [...document.querySelectorAll('#audit-table tbody tr')].map(r => r.textContent)")
            hit = [r for r in rows if "diagnos" in r.lower() and host in r]
            return hit or (d.refresh() and None)
        hit = p.wait("the diagnosis in the audit log", audited)
        p.shot("audit")
        print(f"audit: {hit[0][:160]}")

        # ---- an alert rule from the form; a label value is markup, shown as text
        d.get(url + "#/alerts")
        form = p.wait("the rule form", lambda: d.find_elements(By.ID, "rule-form"))[0]
        evil = "<img src=x onerror=window.pwned=1>"
        form.find_element(By.NAME, "name").send_keys("cpu-markup")
        form.find_element(By.NAME, "labels").send_keys("resource=" + evil)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def listed_rule():
            rows = p.js("return [...document.querySelectorAll('#alert-rules tbody tr')].map(r => r.textContent)")
            return [r for r in rows if "cpu-markup" in r and evil in r] or None
        p.wait("the new rule, its label value as text", listed_rule)
        if p.js("return window.pwned !== undefined || document.querySelector('#alert-rules img') !== null"):
            fail("a rule's label value was taken as markup")
        p.shot("alerts")
        print("alerts: the rule is listed, a markup label value shown as text")
        return figures
    finally:
        d.quit()


if __name__ == "__main__":
    figs = main()
    if "--json" in sys.argv:
        print(json.dumps(figs))

"""Lighthouse on the farmer pages and the buyer catalog, as a phone on a slow network sees them.

    make bench-deps            # Debian's chromium and bench/node_modules (lighthouse, axe-core)
    .venv/bin/python -m bench.lighthouse [--out bench/lighthouse-results.txt]

Serves the app with gunicorn on 127.0.0.1 (a free port, production settings) over the demo data
in a temporary SQLite database, logs in as the demo farmer and buyer, and runs Lighthouse's
mobile profile (simulated slow 4G, a mid-range phone's CPU) on each page (and on a farmer's
settlement statement, after one delivery made through the Stripe sandbox); logged-in pages get
the session cookie through --extra-headers. Prints performance, accessibility and
best-practices scores and the bytes transferred, and fails (exit 1) below the targets:
performance >= 95, accessibility 100, best practices >= 95."""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "bench" / "node_modules" / ".bin" / "lighthouse"
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
# Chromium's own background traffic fails loudly on a closed network without these.
CHROME_FLAGS = ("--headless=new --no-sandbox --disable-gpu --disable-background-networking "
                "--disable-component-update --disable-sync --no-first-run")
DEMO_PASSWORD = "minga-demo-pass"
TARGETS = {"performance": 95, "accessibility": 100, "best-practices": 95}
PAGES = [  # (path, who is logged in)
    ("/login", None),
    ("/my/listings", "farmer1@example.org"),
    ("/my/listings/new", "farmer1@example.org"),
    ("/my/payments", "farmer1@example.org"),
    ("/supply", "buyer1@example.org"),
    ("statement", None),  # a farmer's settlement statement: see prepare_delivery
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(url: str) -> None:
    """Migrate and load the demo in a child process (the app's settings read the environment)."""
    code = ("from flask_migrate import upgrade\n"
            "from coop import create_app\n"
            "from coop.demo.seed import seed_demo\n"
            "from coop.extensions import db\n"
            f"app = create_app('development', SQLALCHEMY_DATABASE_URI={url!r})\n"
            "with app.app_context():\n"
            "    upgrade(revision='heads')\n"
            "    seed_demo()\n"
            "    db.session.commit()\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def prepare_delivery(url: str) -> tuple[str, str]:
    """One delivery on the demo, so that a settlement statement exists: buyer1 joins the
    Colombian pool with the sandbox's test card (localstripe, started for this step only),
    the pool closes, the manager records the first allocation as delivered in full. Returns
    the statement's path and its farmer's e-mail."""
    from devtools.sandbox import Sandbox
    sandbox = Sandbox(persist=False).start()
    code = ("import json\n"
            "from decimal import Decimal\n"
            "from sqlalchemy import select\n"
            "from coop import create_app\n"
            "from coop.auth.models import User\n"
            "from coop.extensions import db\n"
            "from coop.intake import services as intake\n"
            "from coop.pools import services as pools\n"
            "from coop.pools.models import Pool\n"
            f"app = create_app('development', SQLALCHEMY_DATABASE_URI={url!r})\n"
            "with app.app_context():\n"
            "    user = lambda e: db.session.scalar(select(User).where(User.email == e))\n"
            "    pool = db.session.scalar(select(Pool).where(Pool.status == 'open',\n"
            "                             Pool.currency == 'COP'))\n"
            "    pools.place_order(user('buyer1@example.org'), pool.id, quantity_kg='600',\n"
            "                      payment_method='pm_card_visa')\n"
            "    db.session.commit()\n"
            "    pool = pools.close_pool(pool.id)\n"
            "    db.session.commit()\n"
            "    a = pools.pool_allocations(pool.id)[0]\n"
            "    rec = intake.record_intake(user('manager@example.org'), a.id, grade=pool.grade.code,\n"
            "                               received_kg=str(Decimal(a.quantity_g) / 1000))[0]\n"
            "    db.session.commit()\n"
            "    print(json.dumps([f'/my/statements/{rec.id}', rec.farmer.email]))\n")
    env = {**os.environ, "STRIPE_SECRET_KEY": sandbox.secret_key,
           "STRIPE_API_BASE": sandbox.api_base, "STRIPE_TEST_PAYMENT_METHODS": "1"}
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=env,
                             capture_output=True, text=True).stdout
    finally:
        sandbox.stop()
    path, email = json.loads(out.strip().splitlines()[-1])
    return path, email


def serve(url: str, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "MINGA_ENV": "production", "DATABASE_URL": url,
           "SECRET_KEY": secrets.token_hex(32), "SESSION_COOKIE_SECURE": "0",
           # Production refuses memory:// (each worker would count alone): the machine's Redis.
           "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI",
                                                   "redis://127.0.0.1:6379/14")}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited; see its log")
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer within 30 s")


def session_cookie(base: str, email: str) -> str:
    """Log in through the real form (CSRF and all) and return the Cookie header to send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    if token is None:
        token = re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"',
                          page)
    data = urllib.parse.urlencode({"login": email, "password": DEMO_PASSWORD,
                                   "csrf_token": token.group(1)}).encode()
    opener.open(f"{base}/login", data=data)
    cookies = {c.name: c.value for c in jar}
    if "session" not in cookies:
        raise RuntimeError(f"could not log in as {email}")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def lighthouse(url: str, cookie: str | None, workdir: Path) -> dict:
    report = workdir / f"report-{secrets.token_hex(4)}.json"
    profile = Path(tempfile.mkdtemp(prefix="lh-profile-", dir=workdir))
    cmd = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={report}",
           "--only-categories=performance,accessibility,best-practices",
           "--form-factor=mobile", "--throttling-method=simulate", "--quiet",
           f"--chrome-flags={CHROME_FLAGS} --user-data-dir={profile}"]
    if cookie:
        cmd.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    subprocess.run(cmd, check=True, env={**os.environ, "CHROME_PATH": CHROME},
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=240)
    return json.loads(report.read_text())


def summarise(path: str, who: str | None, data: dict) -> dict:
    cats = data["categories"]
    scores = {k: round((cats[k]["score"] or 0) * 100) for k in TARGETS}
    audits = data["audits"]
    failing = sorted(
        {ref["id"] for cat in cats.values() for ref in cat["auditRefs"]
         if ref.get("weight") and audits[ref["id"]].get("score") is not None
         and audits[ref["id"]]["score"] < 1 and audits[ref["id"]]["scoreDisplayMode"]
         in ("binary", "numeric", "metricSavings")})
    requests = audits.get("network-requests", {}).get("details", {}).get("items", [])
    origins = {urllib.parse.urlsplit(r["url"]).netloc for r in requests
               if r["url"].startswith("http")}
    return {"path": path, "who": who or "visitor", **scores,
            "bytes": int(audits["total-byte-weight"]["numericValue"]),
            "requests": len(requests), "origins": sorted(origins), "failing": failing,
            "lcp_ms": int(audits["largest-contentful-paint"]["numericValue"]),
            "tbt_ms": int(audits["total-blocking-time"]["numericValue"]),
            "cls": round(audits["cumulative-layout-shift"]["numericValue"], 3)}


def table(rows: list[dict], version: str) -> str:
    head = (f"Lighthouse {version}, mobile profile (simulated throttling: slow 4G, 4x CPU "
            f"slowdown), Debian chromium, gunicorn on 127.0.0.1, demo data\n"
            f"{'page':<18} {'as':<20} {'perf':>4} {'a11y':>4} {'best':>4} {'bytes':>7} "
            f"{'reqs':>4} {'LCP ms':>6} {'TBT ms':>6} {'CLS':>5}")
    lines = [head, "-" * len(head.splitlines()[-1])]
    for r in rows:
        lines.append(f"{r['path']:<18} {r['who']:<20} {r['performance']:>4} "
                     f"{r['accessibility']:>4} {r['best-practices']:>4} {r['bytes']:>7} "
                     f"{r['requests']:>4} {r['lcp_ms']:>6} {r['tbt_ms']:>6} {r['cls']:>5}")
    lines.append(f"targets: performance >= {TARGETS['performance']}, accessibility "
                 f"{TARGETS['accessibility']}, best practices >= {TARGETS['best-practices']}")
    for r in rows:
        if r["failing"]:
            lines.append(f"  {r['path']}: audits not passed: {', '.join(r['failing'])}")
        if len(r["origins"]) > 1:
            lines.append(f"  {r['path']}: requests to other origins: {r['origins']}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "lighthouse-results.txt"))
    parser.add_argument("--only", help="one path of the list (its row only; for debugging)")
    parser.add_argument("--verbose", action="store_true", help="also list each page's requests")
    args = parser.parse_args(argv)
    pages = [p for p in PAGES if not args.only or p[0] == args.only]
    if not LIGHTHOUSE.exists() or not Path(CHROME).exists():
        print("Run `make bench-deps` first (lighthouse in bench/node_modules, chromium).",
              file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="minga-lighthouse-"))
    url = f"sqlite:///{workdir / 'demo.sqlite'}"
    prepare_database(url)
    if any(p == "statement" for p, _who in pages):
        statement = prepare_delivery(url)
        pages = [statement if p == "statement" else (p, w) for p, w in pages]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(workdir / "gunicorn.log", "w") as log:
        server = serve(url, port, log)
        try:
            cookies = {who: session_cookie(base, who) for who in {w for _p, w in pages if w}}
            rows, version = [], "?"
            for path, who in pages:
                # Warm the server (templates compiled in each worker): the page is measured,
                # not gunicorn's first request.
                for _ in range(4):
                    request = urllib.request.Request(base + path)
                    if who:
                        request.add_header("Cookie", cookies[who])
                    urllib.request.urlopen(request).read()
                data = lighthouse(base + path, cookies.get(who), workdir)
                if data.get("runtimeError"):
                    raise RuntimeError(f"{path}: {data['runtimeError']}")
                final = data.get("finalDisplayedUrl") or data.get("finalUrl", "")
                if urllib.parse.urlsplit(final).path != path:
                    raise RuntimeError(f"{path} ended at {final}: not logged in?")
                version = data.get("lighthouseVersion", version)
                rows.append(summarise(path, who, data))
                if args.verbose:
                    for item in data["audits"]["network-requests"]["details"]["items"]:
                        print(f"  {item['transferSize']:>6} {item['url']}", file=sys.stderr)
                    for item in (data["audits"].get("long-tasks", {}).get("details", {})
                                 .get("items", [])):
                        print(f"  long task {item.get('duration')} ms {item.get('url')}",
                              file=sys.stderr)
                print(f"{path}: done", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=10)
    out = table(rows, version)
    print(out, end="")
    Path(args.out).write_text(out)
    shutil.rmtree(workdir, ignore_errors=True)
    ok = all(r[k] >= v for r in rows for k, v in TARGETS.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures of the real-browser suite: Minga served by gunicorn on loopback over a fresh,
migrated database with the demo data, the local Stripe sandbox, and Debian's Chromium driven
by Playwright in a phone viewport.

- `server` (package): gunicorn on a free 127.0.0.1 port (`coop:create_app("development")`),
  a SQLite file in a temporary folder, or <TEST_DATABASE_URL's database>_e2e on PostgreSQL
  (dropped and created again, so the unit tests' database is never touched); localstripe
  (persist=False) with its webhooks sent to the server's /stripe/webhook.
- `browser` (package): /usr/bin/chromium (CHROME_PATH overrides) with the flags a closed
  network needs. No browser is ever downloaded: a missing Chromium is an error, not a skip.
- `phone`: a function that opens a new Pixel 5 context and page (its own cookies, service
  worker and IndexedDB), a `Visit` around the page that takes each step's screenshot
  into test-artifacts/e2e/ and runs axe-core on every page the browser showed.

The unit tests' autouse `_clean` (tests/conftest.py) is replaced here by one that does
nothing: these tests never touch the unit tests' app or database."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.sandbox import Sandbox
from tests.support import ARTIFACTS, database_url

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "bench" / "node_modules" / "axe-core" / "axe.min.js"
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
# Chromium's own background traffic fails loudly on a closed network without these.
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_PASSWORD = "minga-demo-pass"
BLOCKING_IMPACTS = ("serious", "critical")


@pytest.fixture(autouse=True)
def _clean():
    """Overrides tests/conftest.py's: no unit-test app context, no emptying of its tables."""
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _e2e_database(tmp: Path) -> tuple[str, callable]:
    """The database URL for the served app, and what drops it at the end."""
    base = database_url()  # this worker's own under pytest-xdist
    if not base.startswith("postgresql"):
        return f"sqlite:///{tmp / 'e2e.sqlite'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(base)
    name = f"{url.database or 'minga'}_e2e"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def recreate(create: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                conn.execute(text(f'CREATE DATABASE "{name}"'))

    recreate(True)

    def drop() -> None:
        recreate(False)
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), drop


def _prepare(url: str, broker: str) -> None:
    """Migrate and load the demo in a child process, as `make run` does (the jobs it writes
    go to the test's own broker, never to the repository's instance/)."""
    code = ("from flask_migrate import upgrade\n"
            "from coop import create_app\n"
            "from coop.demo.seed import seed_demo\n"
            "from coop.extensions import db\n"
            f"app = create_app('development', SQLALCHEMY_DATABASE_URI={url!r},\n"
            f"                 CELERY_BROKER_URL={broker!r})\n"
            "with app.app_context():\n"
            "    upgrade(revision='heads')\n"
            "    seed_demo()\n"
            "    db.session.commit()\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


class Server:
    def __init__(self, url: str, sandbox: Sandbox, database_url: str, smtp=None, sms=None,
                 broker: str = ""):
        self.url = url
        self.broker = broker
        self.sandbox = sandbox
        self.database_url = database_url
        self.smtp, self.sms = smtp, sms       # what the app's messages reached

    def wait_for_mail(self, to: str, subject_has: str, text_has: str = "",
                      timeout: float = 30):
        """The e-mail to `to` whose subject holds `subject_has` (and text `text_has`), once
        the worker sent it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in list(self.smtp.messages):
                if to in mail.rcpt_tos and subject_has in mail.subject and \
                        text_has in (mail.text or ""):
                    return mail
            time.sleep(0.2)
        raise AssertionError(f"no e-mail to {to} about {subject_has!r}; got "
                             f"{[(m.rcpt_tos, m.subject) for m in self.smtp.messages]}")

    def wait_for_sms(self, to: str, timeout: float = 30) -> dict:
        """The last SMS the stand-in received for `to` (E.164), once the worker sent it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.sms.messages) if m["to"] == to]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no SMS to {to}; got {[m['to'] for m in self.sms.messages]}")


@pytest.fixture(scope="package")
def server():
    tmp = Path(tempfile.mkdtemp(prefix="minga-e2e-"))
    database_url, drop_database = _e2e_database(tmp)
    sandbox = Sandbox(persist=False).start()
    from devtools.sms_standin import SmsStandin
    from devtools.smtp_standin import SmtpStandin
    smtp = SmtpStandin().start()
    sms = SmsStandin(deliver_callbacks=True).start()     # signed reports posted to the app
    proc = worker = None
    log_path = ARTIFACTS / "gunicorn.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        broker = f"sqla+sqlite:///{tmp / 'broker.sqlite'}"
        _prepare(database_url, broker)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        webhook_secret = "whsec_e2e_" + secrets.token_hex(16)
        sandbox.register_webhook(f"{base}/stripe/webhook", webhook_secret)
        env = {**os.environ, "MINGA_ENV": "development", "DATABASE_URL": database_url,
               "SECRET_KEY": secrets.token_hex(32), "STRIPE_SECRET_KEY": sandbox.secret_key,
               "STRIPE_API_BASE": sandbox.api_base, "STRIPE_WEBHOOK_SECRET": webhook_secret,
               # Card entry with the sandbox's stand-in for Stripe.js (served by localstripe
               # at /js.stripe.com/v3/), beside the test payment methods.
               "STRIPE_PUBLISHABLE_KEY": "pk_test_minga_e2e", "STRIPE_TEST_PAYMENT_METHODS": "1",
               "STRIPE_JS_URL": "",
               "RATELIMIT_STORAGE_URI": "memory://", "LOGIN_RATE_LIMIT": "1000 per minute",
               "SESSION_COOKIE_SECURE": "0", "PUBLIC_BASE_URL": base,
               # A real Celery worker on an embedded broker of its own runs the jobs.
               "CELERY_BROKER_URL": broker,
               "JOBS_EAGER": "0", "MESSAGES_DAYTIME": "0-24"}
        env.update({name: str(value) for name, value in {**smtp.settings(),
                                                          **sms.settings()}.items()})
        env["MAIL_USE_STARTTLS"] = "1" if smtp.settings()["MAIL_USE_STARTTLS"] else "0"
        env.pop("TEST_DATABASE_URL", None)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        log = open(log_path, "w")
        proc = subprocess.Popen(
            [str(gunicorn), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
             "--access-logfile", "-", "--no-control-socket", "--graceful-timeout", "5",
             'coop:create_app("development")'],
            cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2).read()
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited; see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log_path}")
                time.sleep(0.2)
        worker_log = open(ARTIFACTS / "worker.log", "w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-c", "2", "-Q", "minga",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=worker_log, stderr=worker_log)
        yield Server(base, sandbox, database_url, smtp=smtp, sms=sms, broker=broker)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=5)
        smtp.stop()
        sms.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        sandbox.stop()
        drop_database()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="package")
def browser():
    if not (os.path.isfile(CHROME) and os.access(CHROME, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROME}: run `make e2e-deps` (apt-get install "
                    "chromium). The browser suite never downloads a browser.", pytrace=False)
    if not AXE.is_file():
        pytest.fail(f"axe-core not found at {AXE}: run `make e2e-deps` "
                    "(npm install --prefix bench).", pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir).
        browser = p.chromium.launch(executable_path=CHROME, args=CHROME_ARGS, headless=True)
        browser.devices = p.devices
        try:
            yield browser
        finally:
            browser.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


class Visit:
    """A phone's page plus the checks every step makes: a screenshot per step and axe-core on
    every page the browser showed (each URL once per page state checked)."""

    def __init__(self, page, context, server: Server, name: str):
        self.page, self.context, self.server, self.name = page, context, server, name
        self.shown: list[str] = []     # every document the main frame loaded
        self.checked: set[str] = set()
        self.violations: list[str] = []
        page.on("load", lambda: self.shown.append(self.page.url))
        page.set_default_timeout(15_000)

    def url(self, path: str) -> str:
        return self.server.url + path

    def goto(self, path: str):
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("load")
        return response

    def login(self, who: str) -> None:
        self.goto("/login")
        self.step(f"login page ({who})")
        self.page.fill("input[name=login]", who)
        self.page.fill("input[name=password]", DEMO_PASSWORD)
        with self.page.expect_navigation():
            self.page.click("main form button[type=submit]")
        assert "/login" not in self.page.url, f"{who} could not log in: {self.text()[:500]}"
        self.step(f"logged in ({who})")

    def text(self) -> str:
        return self.page.inner_text("body")

    def step(self, label: str, exclude: tuple[str, ...] = ()) -> Path:
        """The step's screenshot (test-artifacts/e2e/<test>/NN-label.png) and axe on the page
        (but the `exclude` selectors: a third party's field, such as Stripe's card field)."""
        folder = ARTIFACTS / self.name
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob("*.png"))) + 1
        path = folder / f"{n:02d}-{_slug(label)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.axe(label, exclude)
        return path

    def axe(self, label: str, exclude: tuple[str, ...] = ()) -> None:
        page = self.page
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            raise AssertionError(f"axe-core is not loaded in {page.url}")
        result = page.evaluate("""async (exclude) => {
            const where = exclude.length ? {include: [document], exclude: exclude.map(s => [s])}
                                         : document;
            const r = await axe.run(where, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: '
                                               + (n.failureSummary || '').split('\\n')[1])}));
        }""", list(exclude))
        self.checked.add(page.url)
        for v in result:
            if v["impact"] in BLOCKING_IMPACTS:
                where = "; ".join(v["nodes"])
                self.violations.append(f"{label} ({page.url}): {v['impact']} {v['id']} — "
                                       f"{v['help']} [{where}]")

    def finish(self) -> None:
        unchecked = [u for u in dict.fromkeys(self.shown) if u not in self.checked
                     and not u.startswith("about:")]
        problems = []
        if self.violations:
            problems.append("axe-core, serious or critical:\n  " + "\n  ".join(self.violations))
        if unchecked:
            problems.append("pages shown without an accessibility check: " + ", ".join(unchecked))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def phone(browser, server, request):
    """Opens phones (new contexts: their own cookies, storage, service worker) for a test;
    at the end, fails the test on accessibility violations or pages left unchecked."""
    opened: list[Visit] = []
    name = _slug(request.node.name)
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)

    def open_phone(locale: str = "es-CO") -> Visit:
        context = browser.new_context(**browser.devices["Pixel 5"], locale=locale,
                                      timezone_id="America/Bogota",
                                      service_workers="allow", accept_downloads=True)
        # axe-core goes in as an init script (every document, before its own scripts): the
        # app's Content-Security-Policy (script-src 'self') refuses an inline <script> tag
        # from add_script_tag, and bypass_csp would switch that policy off in the very
        # browser that should prove it holds.
        context.add_init_script(path=str(AXE))
        page = context.new_page()
        visit = Visit(page, context, server, name)
        opened.append(visit)
        return visit

    yield open_phone
    failures = []
    for visit in opened:
        try:
            visit.finish()
        except pytest.fail.Exception as exc:
            failures.append(str(exc))
        finally:
            visit.context.close()
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose body failed, for test_field_day's story guard."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.e2e_call_failed = True

"""The local Stripe sandbox (localstripe) in a child process, for tests and `make run`.

    sandbox = Sandbox().start()         # 127.0.0.1, a free port, a private store file
    sandbox.api_base                    # "http://127.0.0.1:PORT": STRIPE_API_BASE
    sandbox.register_webhook(url, secret)
    sandbox.reset()                     # empty the store
    sandbox.stop()

The child exits when `stop()` is called, at interpreter exit (atexit), and also when
the parent dies without cleaning up (it watches its stdin pipe). See stripe-sandbox.md.
"""
from __future__ import annotations

import atexit
import http.client
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

SERVER_SCRIPT = Path(__file__).with_name("sandbox_server.py")
ROOT = Path(__file__).resolve().parents[1]
DEV_PORT = 8420
TEST_SECRET_KEY = "sk_test_minga_sandbox"


class SandboxError(RuntimeError):
    pass


class Sandbox:
    """One localstripe process. `port=0` picks a free port (the child binds it and
    reports it back, so there is no window in which another process can take it)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 any_port_if_busy: bool = False, store_path: str | os.PathLike | None = None,
                 persist: bool = True, load: bool = False, log_path: str | os.PathLike | None = None,
                 secret_key: str = TEST_SECRET_KEY):
        self.host = host
        self.requested_port = port
        self.any_port_if_busy = any_port_if_busy
        self.persist = persist
        self.load = load
        self.secret_key = secret_key
        self._store_path = Path(store_path) if store_path else None
        self._log_path = Path(log_path) if log_path else None
        self._tmpdir: str | None = None
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self.port: int | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def api_base(self) -> str:
        if self.port is None:
            raise SandboxError("the sandbox is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def store_path(self) -> Path | None:
        return self._store_path

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self, timeout: float = 20.0) -> "Sandbox":
        """Start the child and return once it answers HTTP requests."""
        if self.running:
            return self
        self._tmpdir = tempfile.mkdtemp(prefix="minga-localstripe-")
        if self._store_path is None:
            self._store_path = Path(self._tmpdir) / "store.pickle"
        if self._log_path is None:
            self._log_path = Path(self._tmpdir) / "localstripe.log"
        for path in (self._store_path, self._log_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(SERVER_SCRIPT), "--host", self.host,
               "--port", str(self.requested_port), "--exit-with-parent",
               "--store", str(self._store_path) if self.persist else ""]
        if self.any_port_if_busy:
            cmd.append("--any-port-if-busy")
        if self.load:
            cmd.append("--load")
        cmd += ["--cleanup-dir", self._tmpdir]
        self._log_file = open(self._log_path, "ab")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log_file, close_fds=True,
                                      start_new_session=True)
        try:
            self.port = self._read_port(timeout)
            self._wait_until_answering(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its private files. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)  # a paused child could not stop
                except OSError:
                    pass
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            if self._store_path is not None and str(self._store_path).startswith(self._tmpdir):
                self._store_path = None
            if self._log_path is not None and str(self._log_path).startswith(self._tmpdir):
                self._log_path = None
            self._tmpdir = None
        self.port = None

    def pause(self) -> None:
        """Freeze the sandbox (SIGSTOP): it accepts connections and answers nothing, as a
        Stripe that hangs does, until `resume()`. For tests of timeouts."""
        if not self.running:
            raise SandboxError("the sandbox is not running")
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused sandbox run again (SIGCONT): it then handles what was sent meanwhile."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _read_port(self, timeout: float) -> int:
        lines: queue.Queue = queue.Queue()
        stdout = self._proc.stdout

        def read() -> None:
            lines.put(stdout.readline())
        threading.Thread(target=read, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise SandboxError(f"localstripe did not start within {timeout}s; "
                               f"see {self._log_path}") from None
        line = line.decode("ascii", "replace").strip()
        if not line.startswith("PORT "):
            self._proc.wait(timeout=5)
            raise SandboxError(f"localstripe failed to start ({self._log_tail()})")
        return int(line.split()[1])

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _ = self._request("GET", "/v1/events?limit=1", auth=True)
                if status == 200:
                    return
            except OSError:
                pass
            if not self.running:
                raise SandboxError(f"localstripe exited ({self._log_tail()})")
            if time.monotonic() > deadline:
                raise SandboxError(f"localstripe did not answer within {timeout}s")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return Path(self._log_path).read_text(errors="replace")[-2000:]
        except (OSError, TypeError):
            return "no log"

    # ------------------------------------------------------------------- config
    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, auth: bool = False) -> tuple[int, bytes]:
        # http.client, not urllib: no proxy from the environment for a local address.
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            headers = dict(headers or {})
            if auth:
                headers["Authorization"] = f"Bearer {self.secret_key}"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def reset(self) -> None:
        """Empty the store (DELETE /_config/data). Registered webhooks stay."""
        status, body = self._request("DELETE", "/_config/data")
        if status != 200:
            raise SandboxError(f"reset failed: {status} {body[:200]!r}")

    def register_webhook(self, url: str, secret: str, events: list[str] | None = None,
                         webhook_id: str = "minga") -> str:
        """Register (or replace, same id) a webhook endpoint; returns its id.
        localstripe signs each delivery with `secret` like Stripe does."""
        fields: list[tuple[str, str]] = [("url", url), ("secret", secret)]
        fields += [("events[]", event) for event in events or ()]
        status, body = self._request(
            "POST", f"/_config/webhooks/{webhook_id}", body=urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise SandboxError(f"webhook registration failed: {status} {body[:200]!r}")
        return webhook_id

    def unregister_webhook(self, webhook_id: str = "minga") -> None:
        """localstripe cannot delete a webhook: make it listen to an event that never happens."""
        self.register_webhook("http://127.0.0.1:9/", "unused", ["minga.never"], webhook_id)

    def get(self, path: str) -> dict:
        """GET an API path with the test key (for tests and diagnostics)."""
        status, body = self._request("GET", path, auth=True)
        if status != 200:
            raise SandboxError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)


# --------------------------------------------------------------------- make run
_dev_sandbox: Sandbox | None = None


def ensure_dev_sandbox(app_config_env=None, *, webhook_url: str | None = None,
                       port: int = DEV_PORT) -> Sandbox | None:
    """For `make run`: with no STRIPE_SECRET_KEY, start the sandbox (127.0.0.1:8420, or a
    free port if that is taken) for the life of this process, and set STRIPE_SECRET_KEY,
    STRIPE_API_BASE and STRIPE_WEBHOOK_SECRET so that create_app picks them up. Its
    webhooks go to the dev server's /stripe/webhook. With a key set, does nothing: the app
    talks to Stripe.

    `app_config_env` is the environment to read and write (a mapping; default os.environ)
    or a config name: "testing" and "production" never start a sandbox.
    The store lives in instance/localstripe-dev.pickle (MINGA_SANDBOX_STORE overrides),
    loaded at start, so holds made in an earlier run still exist for the demo database.
    """
    global _dev_sandbox
    if isinstance(app_config_env, str):
        if app_config_env in ("testing", "production"):
            return None
        env = os.environ
    else:
        env = os.environ if app_config_env is None else app_config_env
    if env.get("STRIPE_SECRET_KEY"):
        return None
    if _dev_sandbox is not None and _dev_sandbox.running:
        return _dev_sandbox

    store = Path(env.get("MINGA_SANDBOX_STORE") or ROOT / "instance" / "localstripe-dev.pickle")
    store.parent.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(port=port, any_port_if_busy=True, store_path=store, load=True,
                      log_path=store.with_suffix(".log"))
    sandbox.start()
    atexit.register(sandbox.stop)
    _dev_sandbox = sandbox

    secret = env.get("STRIPE_WEBHOOK_SECRET") or "whsec_" + secrets.token_hex(24)
    # A publishable key turns card entry on: the card page loads the sandbox's stand-in for
    # Stripe.js (its test cards typed like real ones, its 3-D Secure prompt).
    values = {"STRIPE_SECRET_KEY": sandbox.secret_key, "STRIPE_API_BASE": sandbox.api_base,
              "STRIPE_WEBHOOK_SECRET": secret,
              "STRIPE_PUBLISHABLE_KEY": env.get("STRIPE_PUBLISHABLE_KEY") or "pk_test_sandbox"}
    env.update(values)
    # config.py reads the environment when it is imported; if it already was, the
    # classes hold the old (empty) values: give them the new ones too.
    config_module = sys.modules.get("config") if env is os.environ else None
    if config_module is not None and hasattr(config_module, "Config"):
        for name, value in values.items():
            setattr(config_module.Config, name, value)

    if webhook_url is None:
        host = env.get("HOST", "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        webhook_url = f"http://{host}:{env.get('PORT', '5000')}/stripe/webhook"
    sandbox.register_webhook(webhook_url, secret)
    print(f" * Stripe sandbox (localstripe) at {sandbox.api_base}, webhooks to {webhook_url}",
          file=sys.stderr)
    return sandbox

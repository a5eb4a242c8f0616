"""A stand-in for Twilio's Messages API on loopback (SMS and WhatsApp), for development and
tests; never shipped, and it imports nothing from Minga.

    standin = SmsStandin(account_sid="AC...", auth_token="...").start()
    standin.api_base                     # TWILIO_API_BASE
    standin.messages                     # every message accepted (dicts, Twilio's fields)
    standin.callbacks                    # every delivery report it sent or would send
    standin.stop()

POST /2010-04-01/Accounts/<sid>/Messages.json as Twilio takes it: HTTP Basic with the
account's sid and token (else 401, code 20003); To, Body and From or MessagingServiceSid
(else 400 with Twilio's codes 21604, 21602, 21603; a To that is not E.164: 21211; a
WhatsApp To from a non-WhatsApp From: 21910); 201 with {"sid": "SM" + 32 hex, "status":
"queued", ...}. Then, in a background thread, its StatusCallback gets "sent" and then
"delivered" (a To in `failing`: "failed", ErrorCode 30003; with `whatsapp_window` a set, a
free-form WhatsApp to a number not in it: "failed", 63016), each signed with
X-Twilio-Signature as Twilio signs. Callbacks are POSTed only to loopback URLs (or any URL
with deliver_callbacks=True); the others are recorded, with their signature, for a test to
replay through Flask's test client. `fail_next(status)` makes the next request answer
that status (429, 500, 503 ...).

GET /__standin/messages: the messages as JSON, newest last (the /dev/messages page).

    python -m devtools.sms_standin --port 8026
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"),
                                     hashlib.sha1).digest()).decode()


class SmsStandin:
    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None,
                 port: int = 0, deliver_callbacks: bool | None = None,
                 callback_delay: float = 0.05):
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.port = port
        # None: POST callbacks only to loopback URLs; True: to any; False: record only.
        self.deliver_callbacks = deliver_callbacks
        self.callback_delay = callback_delay
        self.failing: set[str] = set()            # To numbers whose delivery fails
        # None: any WhatsApp goes through; a set: the numbers with an open 24-hour
        # conversation, the only ones a free-form WhatsApp (no ContentSid) reaches.
        self.whatsapp_window: set[str] | None = None
        self.messages: list[dict] = []
        self.callbacks: list[dict] = []
        self.requests = 0
        self._fail_next: list[int] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------

    def start(self) -> "SmsStandin":
        standin = self

        class Handler(_Handler):
            pass
        Handler.standin = standin
        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="sms-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def api_base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def settings(self, *, sender: str = "+15005550006",
                 whatsapp_sender: str = "whatsapp:+14155238886") -> dict:
        """The app settings that send through this stand-in."""
        return {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": self.api_base,
                "TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_FROM": sender, "TWILIO_WHATSAPP_FROM": whatsapp_sender,
                "TWILIO_MESSAGING_SERVICE_SID": ""}

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.callbacks.clear()
            self._fail_next.clear()
            self.failing.clear()
            self.whatsapp_window = None
            self.requests = 0

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._fail_next.extend([status] * times)

    def wait_for_callbacks(self, sid: str, count: int = 2, timeout: float = 5.0) -> list[dict]:
        """The delivery reports of message `sid` once `count` of them are out (or timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.callbacks if c["params"]["MessageSid"] == sid]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._changed.wait(left)

    # --- what the handler calls ---------------------------------------------------------

    def _accept(self, form: dict[str, str]) -> dict:
        now = datetime.now(timezone.utc)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01",
            "to": form["To"], "from": form.get("From"), "body": form.get("Body") or "",
            "content_sid": form.get("ContentSid"),
            "content_variables": form.get("ContentVariables"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "status": "queued", "direction": "outbound-api", "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "USD",
            "error_code": None, "error_message": None,
            "date_created": format_datetime(now), "date_updated": format_datetime(now),
            "date_sent": None, "status_callback": form.get("StatusCallback"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        public = {k: v for k, v in message.items() if k != "status_callback"}
        threading.Thread(target=self._report, args=(message,), daemon=True,
                         name=f"sms-standin-{sid[:8]}").start()
        return public

    def _failure(self, message: dict) -> tuple[int, str] | None:
        number = message["to"].removeprefix("whatsapp:")
        if number in self.failing or message["to"] in self.failing:
            return 30003, "Unreachable destination handset"
        if (message["to"].startswith("whatsapp:") and not message["content_sid"]
                and self.whatsapp_window is not None and number not in self.whatsapp_window):
            return 63016, ("Failed to send freeform message because you are outside the "
                           "allowed window. Please use a Template.")
        return None

    def _report(self, message: dict) -> None:
        failure = self._failure(message)
        for status in ("sent", "failed") if failure else ("sent", "delivered"):
            time.sleep(self.callback_delay)
            with self._lock:
                message["status"] = status
                if status == "failed":
                    message["error_code"], message["error_message"] = failure
            url = message["status_callback"]
            if url:
                self._callback(message, status, url)

    def _callback(self, message: dict, status: str, url: str) -> None:
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                  "MessageSid": message["sid"], "SmsSid": message["sid"],
                  "MessageStatus": status, "SmsStatus": status, "To": message["to"],
                  "From": message["from"] or ""}
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if message["to"].startswith("whatsapp:"):
            params["ChannelPrefix"] = "whatsapp"
        if status == "failed":
            params["ErrorCode"] = str(message["error_code"])
        callback = {"url": url, "params": params,
                    "signature": twilio_signature(self.auth_token, url, params),
                    "delivered": False, "answer": None}
        deliver = self.deliver_callbacks
        if deliver is None:
            deliver = urllib.parse.urlsplit(url).hostname in LOOPBACK
        if deliver:
            request = urllib.request.Request(
                url, data=urllib.parse.urlencode(params).encode(), method="POST",
                headers={"X-Twilio-Signature": callback["signature"],
                         "Content-Type": "application/x-www-form-urlencoded",
                         "User-Agent": "TwilioProxy/1.1 (minga stand-in)"})
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    callback["answer"] = answer.status
                callback["delivered"] = True
            except urllib.error.HTTPError as exc:
                callback["answer"] = exc.code
            except OSError as exc:
                callback["answer"] = str(exc)
        with self._changed:
            self.callbacks.append(callback)
            self._changed.notify_all()


def _error(code: int, message: str, status: int) -> tuple[int, dict]:
    return status, {"code": code, "message": message, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}


class _Handler(BaseHTTPRequestHandler):
    standin: SmsStandin
    server_version = "minga-sms-standin"

    def log_message(self, format, *args):  # quiet: tests and make run have their own logs
        pass

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?")[0] == "/__standin/messages":
            with self.standin._lock:
                rows = [dict(m) for m in self.standin.messages]
            return self._send(200, {"messages": rows})
        self._send(*_error(20404, "The requested resource was not found", 404))

    def do_POST(self):
        standin = self.standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        with standin._lock:
            standin.requests += 1
            forced = standin._fail_next.pop(0) if standin._fail_next else None
        if forced is not None:
            return self._send(*_error(20429 if forced == 429 else 20500,
                                      "Too Many Requests" if forced == 429
                                      else "Internal Server Error", forced))
        match = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", self.path)
        if not match:
            return self._send(*_error(20404, "The requested resource was not found", 404))
        if not self._authorised(match.group(1)):
            return self._send(*_error(20003, "Authenticate", 401))
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        refusal = _refusal(form)
        if refusal is not None:
            return self._send(*refusal)
        self._send(201, standin._accept(form))

    def _authorised(self, path_sid: str) -> bool:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (hmac.compare_digest(user, self.standin.account_sid)
                and hmac.compare_digest(password, self.standin.auth_token)
                and path_sid == user)


def _refusal(form: dict[str, str]) -> tuple[int, dict] | None:
    to, sender = form.get("To", ""), form.get("From", "")
    if not to:
        return _error(21604, "A 'To' phone number is required.", 400)
    if not form.get("Body") and not form.get("ContentSid"):
        return _error(21602, "Message body is required.", 400)
    if form.get("ContentSid") and not re.fullmatch(r"HX[0-9a-f]{32}", form["ContentSid"]):
        return _error(21655, "The ContentSid is Invalid.", 400)
    if form.get("ContentVariables"):
        try:
            valid = isinstance(json.loads(form["ContentVariables"]), dict)
        except ValueError:
            valid = False
        if not valid:
            return _error(21656, "The ContentVariables Parameter is invalid.", 400)
    if not sender and not form.get("MessagingServiceSid"):
        return _error(21603, "A 'From' phone number is required.", 400)
    if not E164.match(to.removeprefix("whatsapp:")):
        return _error(21211, f"Invalid 'To' Phone Number: {to}", 400)
    if sender and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
        return _error(21910, "Invalid From and To pair. From and To should be of the same "
                             "channel", 400)
    if len(form.get("Body") or "") > 1600:
        return _error(21617, "The concatenated message body exceeds the 1600 character "
                             "limit.", 400)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--sid", default=None)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    standin = SmsStandin(account_sid=args.sid, auth_token=args.token, port=args.port).start()
    print(f"SMS stand-in on {standin.api_base}: TWILIO_ACCOUNT_SID={standin.account_sid} "
          f"TWILIO_AUTH_TOKEN={standin.auth_token}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()

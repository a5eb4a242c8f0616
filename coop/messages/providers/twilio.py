"""Twilio's Messages API over plain HTTPS (no SDK): SMS and WhatsApp, and its signed
delivery reports.

    POST {TWILIO_API_BASE}/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json
    Basic auth (account sid, auth token); To, From or MessagingServiceSid, Body (or an
    approved template's ContentSid and ContentVariables), StatusCallback
    -> 201 {"sid": "SM...", "status": "queued", ...}

Refusals are 4xx with Twilio's JSON {"code": 21211, "message": "..."}: permanent. A 429, a
5xx, a timeout or no connection: temporary."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

import requests

from ..outcomes import ChannelError, Sent
from . import Params, Provider, pairs

API_VERSION = "2010-04-01"


class Twilio(Provider):
    name = "twilio"
    signature_header = "X-Twilio-Signature"

    @property
    def _sid(self) -> str:
        return self.config.get("TWILIO_ACCOUNT_SID") or ""

    @property
    def _token(self) -> str:
        return self.config.get("TWILIO_AUTH_TOKEN") or ""

    def send(self, to: str, body: str, *, channel: str, status_callback: str | None,
             template: str | None = None, variables: dict | None = None) -> Sent:
        if not self._sid or not self._token:
            raise ChannelError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set",
                               code="not_configured")
        if template:  # an approved template (Twilio's Content API) in place of the body
            form = {"To": to, "ContentSid": template}
            if variables:
                form["ContentVariables"] = json.dumps({str(k): str(v)
                                                       for k, v in variables.items()})
        else:
            form = {"To": to, "Body": body}
        sender = self.config.get("TWILIO_WHATSAPP_FROM" if channel == "whatsapp"
                                 else "TWILIO_FROM") or ""
        service = self.config.get("TWILIO_MESSAGING_SERVICE_SID") or ""
        if sender:
            form["From"] = (sender if channel != "whatsapp" or sender.startswith("whatsapp:")
                            else f"whatsapp:{sender}")
        elif service:
            form["MessagingServiceSid"] = service
        else:
            raise ChannelError(f"no sender for {channel}: set TWILIO_"
                               f"{'WHATSAPP_' if channel == 'whatsapp' else ''}FROM or "
                               "TWILIO_MESSAGING_SERVICE_SID", code="not_configured")
        if status_callback:
            form["StatusCallback"] = status_callback
        base = (self.config.get("TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/")
        url = f"{base}/{API_VERSION}/Accounts/{self._sid}/Messages.json"
        try:
            response = requests.post(url, data=form, auth=(self._sid, self._token),
                                     timeout=int(self.config.get("SMS_TIMEOUT_SECONDS", 30)))
        except requests.Timeout as exc:
            raise ChannelError(f"Twilio did not answer: {exc}", code="timeout") from exc
        except requests.RequestException as exc:
            raise ChannelError(f"Twilio unreachable: {exc}", code="connection") from exc
        answer = _json(response)
        if response.status_code in (200, 201) and answer.get("sid"):
            return Sent(provider=self.name, provider_id=str(answer["sid"]),
                        status=str(answer.get("status") or "queued"))
        code = answer.get("code") or response.status_code
        text = answer.get("message") or response.reason or "refused"
        temporary = response.status_code == 429 or response.status_code >= 500
        # 401/403: our account's fault (a wrong token), not the address's: fixing it helps.
        permanent = not temporary and response.status_code not in (401, 403)
        raise ChannelError(f"Twilio {response.status_code}: {text}", code=str(code),
                           permanent=permanent)

    def verify_callback(self, url: str, params: Params, signature: str | None) -> bool:
        if not signature or not self._token:
            return False
        expected = signature_for(self._token, url, params)
        return hmac.compare_digest(expected.encode(), signature.strip().encode())

    def parse_callback(self, params: Mapping[str, str]) -> tuple[str, str, str | None]:
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        return sid, status, (params.get("ErrorCode") or None)


def signature_for(token: str, url: str, params: Params) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 keyed by the auth token over the full
    URL followed by each POST parameter's name then value, sorted by name (then value)."""
    data = url + "".join(name + value for name, value in sorted(set(pairs(params))))
    digest = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _json(response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}

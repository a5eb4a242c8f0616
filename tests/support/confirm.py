"""Going through the HTML confirmation step (coop/common/confirm.py) in tests."""
from __future__ import annotations

import html
import re

FORM = re.compile(r'<form method="post" action="([^"]+)" class="confirm-step">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def is_confirmation(response) -> bool:
    return response.status_code == 200 and bool(FORM.search(response.get_data(as_text=True)))


def confirmation(response) -> tuple[str, list[tuple[str, str]]]:
    """(the URL the "Yes" button posts to, its hidden fields) of a confirmation page."""
    page = response.get_data(as_text=True)
    found = FORM.search(page)
    assert response.status_code == 200 and found, (response.status_code, page[:1500])
    return (html.unescape(found.group(1)),
            [(html.unescape(n), html.unescape(v)) for n, v in HIDDEN.findall(found.group(2))])


def confirm(client, response, **changes):
    """Press "Yes" on a confirmation page; `changes` replace posted fields (to tamper)."""
    url, fields = confirmation(response)
    data: dict[str, list[str]] = {"confirm": ["yes"]}  # the button, as a browser sends it
    for name, value in fields:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = [value]
    return client.post(url, data=data)


def post_confirmed(client, url, data=None, **kwargs):
    """POST, and if the answer is a confirmation step, confirm it: the old one-tap action.
    An answer that is not a confirmation (a refusal, a form error) is returned as it is."""
    first = client.post(url, data=data, **kwargs)
    if not is_confirmation(first):
        return first
    return confirm(client, first)

"""A tiny scripted browser for devtenant's sign-in and consent pages (requests + html.parser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from tests.devtenant.helpers import https_session


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, text)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = [a.get("name", ""), a.get("value", ""), ""]

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            name, value, text = self._button
            self.forms[-1].buttons.append((name, value, " ".join(text.split())))
            self._button = None


class Browser:
    """Follows nothing by itself: every redirect is returned so the test can look at it."""

    def __init__(self, ready: dict[str, Any]):
        self.session: requests.Session = https_session(ready)
        self.origin = ready["login"]

    def get(self, url: str) -> requests.Response:
        return self.session.get(urljoin(self.origin, url), allow_redirects=False)

    @staticmethod
    def forms(page: requests.Response) -> list[Form]:
        parser = _FormParser()
        parser.feed(page.text)
        return parser.forms

    def submit(self, form: Form, **fields: str) -> requests.Response:
        return self.session.post(urljoin(self.origin, form.action), data={**form.fields, **fields},
                                 allow_redirects=False)

    def press(self, page: requests.Response, button_value: str) -> requests.Response:
        """Press the button with this value (an account's UPN, "accept", "cancel"...)."""
        for form in self.forms(page):
            for name, value, _ in form.buttons:
                if value == button_value:
                    return self.submit(form, **{name: value})
        raise AssertionError(f"no button {button_value!r} on the page:\n{page.text}")


def query_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


def query_pairs(location: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(location).query, keep_blank_values=True)

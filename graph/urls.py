"""Writing Graph request URLs safely: OData literals, query strings, and links Graph hands back.

User text (a name typed after "verify", a department) only ever reaches a query through `odata_string`,
which doubles single quotes so the text cannot end the literal, and `relative_url`, which percent-encodes
what could end the value (spaces, &, +, #, %).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

# Directory "advanced queries" ($count, $search, casts, some filters) need this header.
EVENTUAL = {"ConsistencyLevel": "eventual"}
_SAFE = "$,()'=:/@*!;"  # left readable in query values


def odata_string(value: str) -> str:
    """A string literal for $filter: single quotes doubled, so no text can end the literal early."""
    return "'" + value.replace("'", "''") + "'"


def relative_url(path: str, params: Mapping[str, str]) -> str:
    """A URL below the Graph version (as a $batch item takes it), with its query values encoded."""
    query = "&".join(f"{k}={quote(str(v), safe=_SAFE)}" for k, v in params.items())
    return f"{path}?{query}" if query else path


def relative_link(graph_url: str, link: str) -> str:
    """An absolute @odata.nextLink, verbatim, as a URL below the version."""
    if link.startswith(graph_url):
        return link[len(graph_url):]
    parts = urlsplit(link)  # the same service under another host name: keep the path below the version
    path = parts.path
    version = "/" + urlsplit(graph_url).path.strip("/").split("/")[-1]
    if version in path:
        path = path[path.index(version) + len(version):]
    return path + (f"?{parts.query}" if parts.query else "")

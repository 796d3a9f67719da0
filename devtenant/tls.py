"""devtenant's https: a throw-away certificate authority and a server certificate it signs.

msal refuses `http://` authorities, so the local identity platform must speak https, exactly as
login.microsoftonline.com does. A fresh CA is made at every start (trustme, ECDSA: fast), its
certificate is written to a PEM file that clients trust (`requests.Session.verify`,
`httpx.AsyncClient(verify=...)`), and the server certificate names 127.0.0.1 and localhost
(plus the host we were asked to listen on, when it is a real name or address).
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_FILE_NAME = "devtenant-ca.pem"
# Addresses a server may bind to but a client never dials: they do not go into the certificate.
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - names, not a bind


@dataclass
class DevTenantTLS:
    """The CA file clients trust and the server's SSL context."""

    ca_file: Path
    server_context: ssl.SSLContext
    _owned_dir: Path | None = None  # a temporary directory we made for the CA file

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for aiohttp/httpx clients that trusts this CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def cleanup(self) -> None:
        """Remove the CA file's temporary directory, if we created it."""
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def server_identities(host: str) -> list[str]:
    identities = ["127.0.0.1", "localhost"]
    if host not in _WILDCARD_HOSTS and host not in identities:
        identities.append(_strip_brackets(host))
    return identities


def create_tls(host: str = "127.0.0.1", ca_dir: Path | None = None) -> DevTenantTLS:
    """Make a CA and a server certificate; write the CA PEM into `ca_dir` (or a new temp dir)."""
    ca = trustme.CA(organization_name="Watchword devtenant")
    cert = ca.issue_cert(*server_identities(host))
    owned: Path | None = None
    if ca_dir is None:
        owned = ca_dir = Path(tempfile.mkdtemp(prefix="devtenant-ca-"))
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_file = ca_dir / CA_FILE_NAME
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(context)
    return DevTenantTLS(ca_file=ca_file, server_context=context, _owned_dir=owned)


def _strip_brackets(host: str) -> str:
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return host

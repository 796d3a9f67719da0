"""The Teams app package: a manifest Microsoft's schema accepts, two correct icons, a stable id, a working CLI."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft4Validator
from PIL import Image

from manifest.__main__ import main
from manifest.package import (
    DEMO_BOT_ID,
    MANIFEST_VERSION,
    PACKAGE_FILES,
    SCHEMA_URL,
    PackageError,
    build_package,
    derive_app_id,
    package_bytes,
    render_manifest,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = f"teams-manifest-v{MANIFEST_VERSION}.schema.json"
BOT_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
PUBLIC_URL = "https://helpdesk.contoso.com"


def _schemas_dir() -> Path:
    configured = os.environ.get("WATCHWORD_SCHEMAS_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "schemas"


@cache
def _load_schema(path: Path) -> dict[str, object] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def teams_validator() -> Draft4Validator:
    """The official schema's validator, or a skip that says where to put the schemas."""
    schema = _load_schema(_schemas_dir() / SCHEMA_FILE)
    if schema is None:
        pytest.skip(f"{SCHEMA_FILE} not found in {_schemas_dir()}: put Microsoft's Teams manifest schemas in "
                    "../shared/schemas/ beside the checkout, or set WATCHWORD_SCHEMAS_DIR to their folder")
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def assert_valid(manifest: dict[str, object]) -> None:
    validator = teams_validator()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    assert not errors, errors
    # Draft 4 has no "const", so the validator cannot check manifestVersion against the schema's value; and the
    # format checker has no "uri" without the rfc3987 package: check both here.
    assert manifest["manifestVersion"] == validator.schema["properties"]["manifestVersion"]["const"]
    assert urlsplit(str(manifest["$schema"])).scheme == "https"


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# Every kind of input, ordinary and hostile, must still give a manifest the official schema accepts.
SCHEMA_CASES = {
    "deployment": {"bot_id": BOT_ID, "public_url": PUBLIC_URL, "version": "1.4.2"},
    "demo, nothing configured": {},
    "public URL with a path": {"bot_id": BOT_ID, "public_url": "https://Tools.Contoso.com/it/watchword/"},
    "public URL with credentials, port and query": {
        "bot_id": BOT_ID, "public_url": "https://admin:s3cret@help.contoso.com:8443/x?token=abc#f"},
    "loopback IP": {"bot_id": BOT_ID, "public_url": "http://127.0.0.1:3978"},
    "public IP": {"bot_id": BOT_ID, "public_url": "https://203.0.113.7"},
    "domain only": {"bot_id": BOT_ID, "domain": "help.contoso.com"},
    "very long name": {"bot_id": BOT_ID, "name": "Contoso Global Service Desk Caller Verification " * 90},
    "quotes and control characters": {"bot_id": BOT_ID, "name": 'Sam\'s "Help"\\Desk </script>\n\x00\u200b'},
    "non-ASCII host and name": {"bot_id": BOT_ID, "public_url": "https://bücher.example", "name": "Bücherei 🛡️"},
}


@pytest.mark.parametrize("inputs", SCHEMA_CASES.values(), ids=SCHEMA_CASES.keys())
def test_packaged_manifest_validates_against_the_official_teams_schema(inputs: dict[str, str]) -> None:
    manifest = json.loads(read_zip(package_bytes(**inputs))["manifest.json"].decode("utf-8"))
    assert_valid(manifest)
    assert manifest == render_manifest(**inputs)


def test_manifest_for_a_deployment_has_its_bot_links_and_domain() -> None:
    manifest = render_manifest(bot_id=BOT_ID, public_url=PUBLIC_URL, version="1.4.2")
    assert manifest["$schema"] == SCHEMA_URL
    assert manifest["version"] == "1.4.2"
    assert manifest["name"] == {"short": "Watchword", "full": "Watchword: helpdesk caller verification"}
    assert manifest["developer"] == {
        "name": "Watchword",
        "websiteUrl": "https://helpdesk.contoso.com/",
        "privacyUrl": "https://helpdesk.contoso.com/privacy",
        "termsOfUseUrl": "https://helpdesk.contoso.com/terms",
    }
    bot = manifest["bots"][0]
    assert (bot["botId"], bot["scopes"]) == (BOT_ID, ["personal", "team", "groupChat"])
    assert (bot["supportsFiles"], bot["isNotificationOnly"]) == (False, False)
    assert manifest["validDomains"] == ["helpdesk.contoso.com"]
    assert manifest["webApplicationInfo"] == {"id": BOT_ID, "resource": f"api://helpdesk.contoso.com/{BOT_ID}"}
    assert manifest["permissions"] == ["identity", "messageTeamMembers"]
    assert "authorization" not in manifest


def test_demo_build_without_a_client_id_has_the_marked_placeholder_bot_on_localhost() -> None:
    manifest = render_manifest()
    assert manifest["bots"][0]["botId"] == DEMO_BOT_ID
    assert manifest["validDomains"] == ["localhost"]
    assert manifest["description"]["full"].startswith("DEMO BUILD")


def test_public_url_with_a_path_keeps_the_path_in_links_and_only_the_host_in_valid_domains() -> None:
    manifest = render_manifest(bot_id=BOT_ID, public_url="https://Tools.Contoso.com/it/watchword/")
    assert manifest["developer"]["privacyUrl"] == "https://tools.contoso.com/it/watchword/privacy"
    assert manifest["validDomains"] == ["tools.contoso.com"]
    assert manifest["webApplicationInfo"]["resource"] == f"api://tools.contoso.com/{BOT_ID}"


def test_credentials_query_and_fragment_in_the_public_url_never_reach_the_manifest_but_a_port_does() -> None:
    manifest = render_manifest(bot_id=BOT_ID, public_url="https://admin:s3cret@help.contoso.com:8443/x?token=abc#f")
    text = json.dumps(manifest)
    assert "s3cret" not in text and "token" not in text
    assert manifest["developer"]["websiteUrl"] == "https://help.contoso.com:8443/x/"
    assert manifest["validDomains"] == ["help.contoso.com:8443"]


def test_loopback_ip_becomes_localhost_and_another_ip_leaves_valid_domains_out() -> None:
    loopback = render_manifest(bot_id=BOT_ID, public_url="http://127.0.0.1:3978")
    assert loopback["validDomains"] == ["localhost:3978"]
    public_ip = render_manifest(bot_id=BOT_ID, public_url="https://203.0.113.7")
    assert "validDomains" not in public_ip
    assert public_ip["webApplicationInfo"] == {"id": BOT_ID}


def test_non_ascii_host_is_written_in_its_punycode_form_everywhere() -> None:
    manifest = render_manifest(bot_id=BOT_ID, public_url="https://bücher.example/hilfe")
    assert manifest["developer"]["websiteUrl"] == "https://xn--bcher-kva.example/hilfe/"
    assert manifest["validDomains"] == ["xn--bcher-kva.example"]


def test_domain_option_stands_in_for_a_missing_public_url() -> None:
    manifest = render_manifest(bot_id=BOT_ID, domain="Help.Contoso.com")
    assert manifest["validDomains"] == ["help.contoso.com"]
    assert manifest["developer"]["termsOfUseUrl"] == "https://help.contoso.com/terms"


def test_very_long_name_is_cut_to_fit_with_an_ellipsis() -> None:
    name = "Contoso Global Service Desk Caller Verification " * 5
    manifest = render_manifest(bot_id=BOT_ID, public_url=PUBLIC_URL, name=name)
    short, full = manifest["name"]["short"], manifest["name"]["full"]
    assert len(short) == 30 and short == "Contoso Global Service Desk C\u2026"
    assert len(full) <= 100 and full.endswith("\u2026") and full.startswith("Contoso Global")


def test_quotes_markup_and_control_characters_in_a_name_are_escaped_not_spliced() -> None:
    name = 'Sam\'s "Help"\\Desk </script>{{ 7*7 }}\n\x00\u200b\u00e9'
    manifest = render_manifest(bot_id=BOT_ID, public_url=PUBLIC_URL, name=name)
    assert manifest["name"]["short"] == 'Sam\'s "Help"\\Desk </script>{{\u2026'
    assert len(manifest["name"]["short"]) == 30
    assert manifest["name"]["full"].startswith('Sam\'s "Help"\\Desk </script>{{ 7*7 }} \u00e9: ')
    assert list(manifest) == list(render_manifest(bot_id=BOT_ID, public_url=PUBLIC_URL))  # no injected keys


def test_blank_name_falls_back_to_watchword() -> None:
    assert render_manifest(bot_id=BOT_ID, name=" \n\t")["name"]["short"] == "Watchword"


def test_commands_offer_verify_everywhere_and_reset_my_password_only_in_personal_chat() -> None:
    lists = render_manifest(bot_id=BOT_ID)["bots"][0]["commandLists"]
    by_scope = {scope: [c["title"] for c in entry["commands"]] for entry in lists for scope in entry["scopes"]}
    assert by_scope == {
        "personal": ["verify", "cancel", "reset my password", "help"],
        "team": ["verify", "cancel", "help"],
        "groupChat": ["verify", "cancel", "help"],
    }
    verify = next(c for c in lists[0]["commands"] if c["title"] == "verify")
    assert verify["description"] == "Verify a caller: verify <name or email>"
    # Teams' documented limits, stricter than the schema's 128/4000.
    for command in (c for entry in lists for c in entry["commands"]):
        assert len(command["title"]) <= 32 and len(command["description"]) <= 128


def test_descriptions_fit_teams_limits() -> None:
    description = render_manifest()["description"]
    assert len(description["short"]) <= 80 and len(description["full"]) <= 4000


def test_manifest_version_matches_the_schema_url() -> None:
    assert f"/v{MANIFEST_VERSION}/" in SCHEMA_URL


def test_package_holds_exactly_the_manifest_and_two_icons_at_its_root() -> None:
    data = package_bytes(bot_id=BOT_ID, public_url=PUBLIC_URL)
    files = read_zip(data)
    assert sorted(files) == sorted(PACKAGE_FILES) == ["color.png", "manifest.json", "outline.png"]
    manifest = json.loads(files["manifest.json"].decode("utf-8"))
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_color_icon_is_a_192_pixel_square_in_full_colour() -> None:
    image = Image.open(io.BytesIO(read_zip(package_bytes())["color.png"]))
    assert image.format == "PNG" and image.size == (192, 192) and image.mode in ("RGB", "RGBA")
    assert len(image.getcolors(192 * 192)) > 2  # more than a flat two-tone


def test_outline_icon_is_a_32_pixel_square_white_on_full_transparency() -> None:
    image = Image.open(io.BytesIO(read_zip(package_bytes())["outline.png"]))
    assert image.format == "PNG" and image.size == (32, 32) and image.mode == "RGBA"
    pixels = image.get_flattened_data()
    assert all(a == 0 or (r, g, b) == (255, 255, 255) for r, g, b, a in pixels)
    assert sum(a == 255 for *_, a in pixels) > 50
    assert sum(a == 0 for *_, a in pixels) > 300


def test_app_id_is_derived_from_the_bot_id_and_every_build_is_identical() -> None:
    first = render_manifest(bot_id=BOT_ID, public_url=PUBLIC_URL)
    assert first["id"] == derive_app_id(BOT_ID) == derive_app_id(BOT_ID.upper()) != BOT_ID
    assert render_manifest(bot_id="0b9e8d7c-6b5a-4f49-8382-71605f4e3d2c")["id"] != first["id"]
    assert package_bytes(bot_id=BOT_ID, public_url=PUBLIC_URL) == package_bytes(bot_id=BOT_ID, public_url=PUBLIC_URL)


def test_explicit_app_id_is_used_as_given() -> None:
    app_id = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    assert render_manifest(bot_id=BOT_ID, app_id=app_id.upper())["id"] == app_id


def test_semver_version_also_matches_the_schemas_semver_definition() -> None:
    pattern = teams_validator().schema["definitions"]["semver"]["pattern"]
    assert re.match(pattern, render_manifest(version="10.0.3")["version"])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"bot_id": "not-a-guid"}, "bot id must be a GUID"),
        ({"app_id": "12345"}, "app id must be a GUID"),
        ({"version": "1.0.0-beta"}, "MAJOR.MINOR.PATCH"),
        ({"version": "1.0"}, "MAJOR.MINOR.PATCH"),
        ({"public_url": "ftp://files.contoso.com"}, "http(s)://"),
        ({"public_url": "https://bad_host.contoso.com"}, "not a valid host name"),
        ({"domain": "https://help.contoso.com/x"}, "host name such as"),
        ({"domain": "bad_host!.com"}, "not a valid host name"),
    ],
)
def test_bad_inputs_are_refused_with_a_message_saying_what_is_expected(inputs: dict[str, str], message: str) -> None:
    with pytest.raises(PackageError, match=re.escape(message)):
        package_bytes(**inputs)


def test_build_package_writes_the_same_bytes_the_console_serves(tmp_path: Path) -> None:
    out = build_package(bot_id=BOT_ID, public_url=PUBLIC_URL, out=tmp_path / "nested" / "app.zip")
    assert out == tmp_path / "nested" / "app.zip"
    assert out.read_bytes() == package_bytes(bot_id=BOT_ID, public_url=PUBLIC_URL)
    assert [p.name for p in out.parent.iterdir()] == ["app.zip"]


def test_cli_builds_from_settings_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    environ = {"WATCHWORD_CLIENT_ID": BOT_ID, "WATCHWORD_CLIENT_SECRET": "x", "WATCHWORD_PUBLIC_URL": PUBLIC_URL}
    assert main(["--out", "out/pkg.zip", "--version", "2.0.1"], environ) == 0
    manifest = json.loads(read_zip((tmp_path / "out" / "pkg.zip").read_bytes())["manifest.json"])
    assert (manifest["bots"][0]["botId"], manifest["version"]) == (BOT_ID, "2.0.1")
    assert manifest["id"] == derive_app_id(BOT_ID)
    assert "wrote out/pkg.zip" in capsys.readouterr().out


def test_cli_refuses_a_bad_bot_id_with_exit_status_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--bot-id", "nope"], {}) == 2
    assert "bot id must be a GUID" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


def test_python_dash_m_manifest_writes_build_watchword_teams_zip(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "manifest", "--bot-id", BOT_ID, "--domain", "help.contoso.com"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    files = read_zip((tmp_path / "build" / "watchword-teams.zip").read_bytes())
    assert json.loads(files["manifest.json"])["validDomains"] == ["help.contoso.com"]

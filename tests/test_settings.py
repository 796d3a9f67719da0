"""Settings are read once from the environment and fail at start with a message that says how to fix them."""

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from settings import DEFAULT_GRAPH_URL, SettingsError, load_settings

GUID = "5f0b3c52-9c53-4a43-9d7b-2f0f3b0c3e11"


def load(env: dict[str, str]):
    """The environment as a valid start needs it (demo mode asked for, or production's https URL) plus `env`."""
    configured = "WATCHWORD_CLIENT_ID" in env or "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID" in env
    base = {"WATCHWORD_PUBLIC_URL": "https://watchword.example.com"} if configured else {"WATCHWORD_DEMO": "true"}
    return load_settings({**base, **env}, dotenv=None)


def test_without_a_client_id_or_demo_mode_watchword_refuses_to_start_and_says_what_to_set():
    with pytest.raises(SettingsError, match="WATCHWORD_CLIENT_ID and WATCHWORD_CLIENT_SECRET.*WATCHWORD_DEMO=true"):
        load_settings({}, dotenv=None)


def test_demo_mode_is_asked_for_and_listens_on_loopback_only():
    assert load_settings({"WATCHWORD_DEMO": "true"}, dotenv=None).demo
    with pytest.raises(SettingsError, match="loopback only"):
        load_settings({"WATCHWORD_DEMO": "true", "WATCHWORD_HOST": "0.0.0.0"}, dotenv=None)  # noqa: S104 - the point
    with pytest.raises(SettingsError, match="both set"):
        load_settings({"WATCHWORD_DEMO": "true", "WATCHWORD_CLIENT_ID": GUID, "WATCHWORD_CLIENT_SECRET": "s"},
                      dotenv=None)


def test_production_needs_an_https_public_url_not_the_host_header():
    registration = {"WATCHWORD_CLIENT_ID": GUID, "WATCHWORD_CLIENT_SECRET": "s"}
    for public in ("", "http://watchword.example.com"):
        with pytest.raises(SettingsError, match="WATCHWORD_PUBLIC_URL must be the https://"):
            load_settings({**registration, "WATCHWORD_PUBLIC_URL": public}, dotenv=None)
    ok = load_settings({**registration, "WATCHWORD_PUBLIC_URL": "https://watchword.example.com/"}, dotenv=None)
    assert ok.public_url == "https://watchword.example.com" and not ok.demo


def test_no_app_registration_means_demo_mode():
    settings = load({})
    assert settings.demo
    assert settings.graph_url == DEFAULT_GRAPH_URL
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


def test_client_id_without_secret_says_where_to_create_one():
    with pytest.raises(SettingsError, match="Certificates & secrets"):
        load({"WATCHWORD_CLIENT_ID": GUID})


def test_malformed_client_id_is_named_in_the_error():
    with pytest.raises(SettingsError, match="WATCHWORD_CLIENT_ID must be a GUID"):
        load({"WATCHWORD_CLIENT_ID": "not-a-guid", "WATCHWORD_CLIENT_SECRET": "s"})


def test_agents_sdk_connection_names_are_honoured():
    settings = load({
        "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": GUID,
        "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET": "shh",
    })
    assert not settings.demo and settings.client_id == GUID


def test_secret_never_appears_in_repr():
    settings = load({"WATCHWORD_CLIENT_ID": GUID, "WATCHWORD_CLIENT_SECRET": "very-secret-value"})
    assert "very-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WATCHWORD_PORT", "http", "whole number"),
        ("WATCHWORD_PORT", "70000", "from 0 to 65535"),
        ("WATCHWORD_GRAPH_URL", "http://graph.example/v1.0", "https://"),
        ("WATCHWORD_DATABASE_URL", "mysql://u:p@h/db", "sqlite\\+aiosqlite"),
        ("WATCHWORD_LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("WATCHWORD_DEMO_USERS", "5", "from 20 to 50000"),
        ("WATCHWORD_DEMO_LATENCY_MS", "-1", "from 0 to 10000"),
        ("WATCHWORD_CA_FILE", "/nonexistent/ca.pem", "not a readable file"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message) as info:
        load({name: value})
    assert name in str(info.value)


def test_database_error_does_not_echo_credentials():
    with pytest.raises(SettingsError) as info:
        load({"WATCHWORD_DATABASE_URL": "mysql://user:hunter2@h/db"})
    assert "hunter2" not in str(info.value)


def test_dotenv_fills_only_what_the_environment_lacks(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("WATCHWORD_PORT=4000\nWATCHWORD_DEMO_SEED=7\nWATCHWORD_DEMO=true\n")
    settings = load_settings({"WATCHWORD_PORT": "5000"}, dotenv=dotenv)
    assert settings.port == 5000 and settings.demo_seed == 7


def test_demo_latency_defaults_to_none_and_can_be_set():
    assert load({}).demo_latency_ms == 0
    assert load({"WATCHWORD_DEMO_LATENCY_MS": "120"}).demo_latency_ms == 120


def test_every_bad_variable_is_named_at_once_so_one_restart_fixes_them_all():
    with pytest.raises(SettingsError) as info:
        load({"WATCHWORD_PORT": "http", "WATCHWORD_LOG_LEVEL": "LOUD", "WATCHWORD_TENANT_ID": "contoso"})
    lines = str(info.value).splitlines()
    assert [line.split()[0] for line in lines] == ["WATCHWORD_PORT", "WATCHWORD_TENANT_ID", "WATCHWORD_LOG_LEVEL"]
    assert "Directory (tenant) ID" in lines[1]


def test_a_bad_value_in_dotenv_is_named_like_one_in_the_environment(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("WATCHWORD_DEMO=true\nWATCHWORD_DEMO_USERS=5\n")
    with pytest.raises(SettingsError, match="WATCHWORD_DEMO_USERS must be a whole number from 20 to 50000"):
        load_settings({}, dotenv=dotenv)


def test_a_malformed_client_id_under_the_agents_sdk_name_is_named_as_set():
    with pytest.raises(SettingsError, match="CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID must be a GUID"):
        load({"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": "watchword", "WATCHWORD_CLIENT_SECRET": "s"})


def test_watchword_names_win_over_the_agents_sdk_names():
    other = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    settings = load({"WATCHWORD_CLIENT_ID": GUID, "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": other,
                     "WATCHWORD_CLIENT_SECRET": "s"})
    assert settings.client_id == GUID


def test_anonymous_bot_requests_follow_demo_mode_whatever_the_environment_or_dotenv_says(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("WATCHWORD_BOT_ANONYMOUS=true\nbot_anonymous=true\n")
    production = load_settings({"WATCHWORD_CLIENT_ID": GUID, "WATCHWORD_CLIENT_SECRET": "s",
                                "WATCHWORD_PUBLIC_URL": "https://watchword.example.com",
                                "WATCHWORD_BOT_ANONYMOUS": "true"}, dotenv=dotenv)
    assert not production.bot_anonymous
    assert load({}).bot_anonymous


def test_an_empty_variable_counts_as_unset():
    settings = load({"WATCHWORD_PORT": "", "WATCHWORD_LOG_LEVEL": " ", "WATCHWORD_DEMO_SEED": ""})
    assert (settings.port, settings.log_level, settings.demo_seed) == (3978, "INFO", 1)


def test_no_secret_reaches_repr_or_an_error_message():
    secrets = {"WATCHWORD_CLIENT_SECRET": "client-hunter2", "WATCHWORD_AUDIT_HEAD_SECRET": "head-hunter2",
               "WATCHWORD_SESSION_KEY": Fernet.generate_key().decode(),
               "WATCHWORD_STATE_KEY": Fernet.generate_key().decode()}
    settings = load({"WATCHWORD_CLIENT_ID": GUID, **secrets})
    assert not any(value in repr(settings) or value in str(settings) for value in secrets.values())
    assert settings.state_key.get_secret_value() == secrets["WATCHWORD_STATE_KEY"]
    with pytest.raises(SettingsError) as info:
        load({"WATCHWORD_STATE_KEY": "state-hunter2", "WATCHWORD_SESSION_KEY": "session-hunter2"})
    assert "hunter2" not in str(info.value) and str(info.value).count("Fernet.generate_key") == 2


def test_settings_are_frozen_and_a_changed_copy_is_validated_again():
    settings = load({})
    with pytest.raises(ValidationError):
        settings.port = 4000  # type: ignore[misc]
    assert settings.replace(port=4000).port == 4000 and settings.port == 3978
    with pytest.raises(ValidationError, match="from 0 to 65535"):
        settings.replace(port=70000)


PRODUCTION = {"WATCHWORD_CLIENT_ID": GUID, "WATCHWORD_CLIENT_SECRET": "s"}


def test_metrics_are_off_unless_a_port_is_set():
    assert load(PRODUCTION).metrics_port is None
    on = load({**PRODUCTION, "WATCHWORD_METRICS_PORT": "9464"})
    assert (on.metrics_port, on.metrics_host, on.metrics_token.get_secret_value()) == (9464, "127.0.0.1", "")


def test_metrics_beyond_this_machine_need_a_token():
    with pytest.raises(SettingsError, match="WATCHWORD_METRICS_TOKEN"):
        load({**PRODUCTION, "WATCHWORD_METRICS_PORT": "9464", "WATCHWORD_METRICS_HOST": "10.0.0.5"})
    token = "a-long-random-string-for-the-scraper"
    on = load({**PRODUCTION, "WATCHWORD_METRICS_PORT": "9464", "WATCHWORD_METRICS_HOST": "10.0.0.5",
               "WATCHWORD_METRICS_TOKEN": token})
    assert on.metrics_host == "10.0.0.5" and token not in repr(on)


def test_logs_are_json_lines_in_production_and_text_in_demo_mode():
    assert load(PRODUCTION).log_format == "json"
    assert load({}).log_format == "text"
    assert load({"WATCHWORD_LOG_FORMAT": "JSON"}).log_format == "json"


def test_load_limits_have_sane_defaults_and_refuse_nonsense():
    defaults = load({})
    assert (defaults.starts_at_once, defaults.start_wait_s, defaults.plan_memory_mb) == (16, 5, 64)
    tuned = load({"WATCHWORD_STARTS_AT_ONCE": "40", "WATCHWORD_START_WAIT_S": "10", "WATCHWORD_PLAN_MEMORY_MB": "256"})
    assert (tuned.starts_at_once, tuned.start_wait_s, tuned.plan_memory_mb) == (40, 10, 256)
    for name in ("WATCHWORD_STARTS_AT_ONCE", "WATCHWORD_START_WAIT_S", "WATCHWORD_PLAN_MEMORY_MB"):
        with pytest.raises(SettingsError, match=name):
            load({name: "0"})

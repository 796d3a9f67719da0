"""The console's settings: who may sign in, the session key, and demo mode's unconsented tenant."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from settings import (
    DEFAULT_ADMIN_ROLES,
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_ROLE_ADMINISTRATOR,
    Settings,
    SettingsError,
    load_settings,
)

GUID = "5f0b3c52-9c53-4a43-9d7b-2f0f3b0c3e11"
DEVTENANT_ADMINS = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"


def load(env: dict[str, str]) -> Settings:
    return load_settings({"WATCHWORD_DEMO": "true", **env}, dotenv=None)


def test_admin_group_and_role_must_be_guids_and_are_kept_lower_case():
    settings = load({"WATCHWORD_ADMIN_GROUP_ID": GUID.upper(), "WATCHWORD_ADMIN_ROLE": GUID})
    assert settings.admin_group_id == GUID and settings.admin_role_ids == (*DEFAULT_ADMIN_ROLES, GUID)
    with pytest.raises(SettingsError, match="WATCHWORD_ADMIN_GROUP_ID must be a GUID"):
        load({"WATCHWORD_ADMIN_GROUP_ID": "Watchword Admins"})
    with pytest.raises(SettingsError, match="WATCHWORD_ADMIN_ROLE must be a GUID .*Global Administrator"):
        load({"WATCHWORD_ADMIN_ROLE": "Global Administrator"})


def test_global_and_privileged_role_administrators_may_sign_in_unless_configured_otherwise():
    assert load({}).admin_role_ids == (GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR)
    assert load({"WATCHWORD_ADMIN_ROLES": f" {GUID.upper()} , {GLOBAL_ADMINISTRATOR}"}).admin_role_ids == (
        GUID, GLOBAL_ADMINISTRATOR)
    assert load({"WATCHWORD_ADMIN_ROLES": "none"}).admin_role_ids == ()
    with pytest.raises(SettingsError, match="WATCHWORD_ADMIN_ROLES must be a GUID .*separated by commas"):
        load({"WATCHWORD_ADMIN_ROLES": "Global Administrator"})


def test_a_malformed_session_key_says_how_to_make_one_and_never_echoes_it():
    with pytest.raises(SettingsError, match="Fernet.generate_key") as info:
        load({"WATCHWORD_SESSION_KEY": "hunter2-not-a-key"})
    assert "hunter2" not in str(info.value)


def test_the_session_key_is_a_secret_kept_out_of_repr():
    key = Fernet.generate_key().decode()
    settings = load({"WATCHWORD_SESSION_KEY": key})
    assert settings.session_key.get_secret_value() == key and key not in repr(settings)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("", False)])
def test_demo_mode_can_start_devtenant_unconsented(value, expected):
    assert load({"WATCHWORD_DEMO_UNCONSENTED": value}).demo_unconsented is expected


def test_demo_unconsented_refuses_anything_but_true_or_false():
    with pytest.raises(SettingsError, match="WATCHWORD_DEMO_UNCONSENTED must be true or false"):
        load({"WATCHWORD_DEMO_UNCONSENTED": "maybe"})


def test_on_devtenant_the_admins_group_defaults_to_its_watchword_admins():
    ready = {"login": "https://127.0.0.1:1", "graph": "https://127.0.0.1:1/v1.0", "client_id": GUID,
             "client_secret": "s", "ca_file": __file__, "tenant_id": GUID, "admins_group_id": DEVTENANT_ADMINS}
    assert Settings().with_devtenant(ready).admin_group_id == DEVTENANT_ADMINS
    assert Settings(admin_group_id=GUID).with_devtenant(ready).admin_group_id == GUID

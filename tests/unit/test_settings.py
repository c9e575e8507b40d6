from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.settings import Settings, SettingsError, load_settings


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('home_area_code = "0551"\nami_port = 6038\nhttp_port = 9000\n')
    settings = load_settings(config, environ={"HOTLINE_HTTP_PORT": "9100"})
    assert settings.home_area_code == "0551"  # from the file
    assert settings.ami_port == 6038  # from the file
    assert settings.http_port == 9100  # the environment wins
    assert settings.home_region == "CN"  # default
    assert load_settings(environ={}).home_area_code == "0558"


def test_database_url_keeps_its_conventional_name() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    assert load_settings(environ={"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOTLINE_AMI_PORT": "abc"}, "ami_port"),
        ({"HOTLINE_AMI_PORT": "70000"}, "ami_port"),
        ({"HOTLINE_HOME_AREA_CODE": "558"}, "home_area_code"),
        ({"HOTLINE_HOME_REGION": "china"}, "home_region"),
        ({"DATABASE_URL": "mysql://x"}, "database_url"),
        ({"HOTLINE_PBX_MODE": "live"}, "pbx_mode"),
        ({"HOTLINE_AMI_SECRET": " "}, "ami_secret"),
    ],
)
def test_bad_values_name_the_key_and_the_source(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert named in message and "environment" in message


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("ami_prot = 5038\n")
    with pytest.raises(SettingsError, match=r"unknown key.*ami_prot"):
        load_settings(config, environ={})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("ami_port = = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, environ={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"HOTLINE_CONFIG": str(tmp_path / "nope.toml")})


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.http_port = 1  # type: ignore[misc]
    assert settings.replace(http_port=9001).http_port == 9001
    with pytest.raises(SettingsError, match="http_port"):
        settings.replace(http_port=0)

from pathlib import Path

import pytest

from eventpipe.errors import ConfigError
from eventpipe.settings import Settings


def test_defaults():
    settings = Settings.load()
    assert settings.warehouse == Path("warehouse")
    assert settings.session_timeout_minutes == 30
    assert settings.columns == {}


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    (tmp_path / "eventpipe.toml").write_text(
        'warehouse = "from-file"\nsession_timeout_minutes = 10\nsources = ["a/"]\n'
        '[columns]\ntimestamp = "event_time"\nuid = "user_id"\n'
    )
    from_file = Settings.load()
    assert from_file.warehouse == Path("from-file")
    assert from_file.columns == {"timestamp": "event_time", "uid": "user_id"}
    assert from_file.sources == ["a/"]

    monkeypatch.setenv("EVENTPIPE_SESSION_TIMEOUT_MINUTES", "20")
    monkeypatch.setenv("EVENTPIPE_WAREHOUSE", "from-env")
    from_env = Settings.load()
    assert (from_env.warehouse, from_env.session_timeout_minutes) == (Path("from-env"), 20)

    from_flags = Settings.load(warehouse=Path("from-flag"), session_timeout_minutes=None)
    assert from_flags.warehouse == Path("from-flag")
    assert from_flags.session_timeout_minutes == 20


def test_config_file_named_explicitly(tmp_path):
    custom = tmp_path / "custom.toml"
    custom.write_text('warehouse = "elsewhere"\n')
    assert Settings.load(custom).warehouse == Path("elsewhere")
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[columns]\nts = "timestamp"\n', "unknown field"),
        ("session_timeout_minutes = -1\n", "session_timeout_minutes"),
        ('warehous = "typo"\n', "warehous"),
        ("not toml at all [", "cannot read settings file"),
    ],
)
def test_invalid_settings_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "eventpipe.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        Settings.load()

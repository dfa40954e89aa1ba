import os
import tomllib
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from oexec.config import Config
from oexec.config_loader import ConfigError, load_config, read_secrets_file

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_any_source() -> None:
    assert load_config(env={}) == Config()


def test_file_env_and_overrides_in_precedence_order(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[front]\nworkers = 8\n[store]\nurl = "redis://127.0.0.1:6379/1"\n'
        '[limits]\nsafety_margin = "0.5"\n'
    )
    config = load_config(
        path,
        env={"OEXEC_FRONT_WORKERS": "16", "OEXEC_API_KEY": "key"},
        overrides={"front": {"workers": 32}},
    )
    assert config.front.workers == 32
    assert config.store.url == "redis://127.0.0.1:6379/1"
    assert config.limits.safety_margin == Decimal("0.5")
    assert config.venue.api_key == "key"


def test_env_lists_are_comma_separated() -> None:
    config = load_config(env={"OEXEC_FRONT_LISTEN": "tcp://127.0.0.1:1, ipc:///tmp/o.sock"})
    assert config.front.listen == ("tcp://127.0.0.1:1", "ipc:///tmp/o.sock")


def test_all_problems_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[front]\nworkers = "many"\nbogus = 1\n[nosuch]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = "\n".join(info.value.problems)
    assert "front.workers: expected an integer" in text
    assert "front.bogus: unknown key" in text
    assert "nosuch: unknown section" in text


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"OEXEC_VENUE_KEY_TYPE": "rsa"}, "venue.key_type"),
        ({"OEXEC_VENUE_RECV_WINDOW_MS": "70000"}, "recv_window_ms"),
        ({"OEXEC_STORE_URL": "mysql://x"}, "store.url"),
        ({"OEXEC_FRONT_LISTEN": "http://x"}, "endpoint"),
        ({"OEXEC_LIMITS_SAFETY_MARGIN": "1.5"}, "safety_margin"),
        ({"OEXEC_LIMITS_SAFETY_MARGIN": "NaN"}, "safety_margin"),
        ({"OEXEC_VENUE_BASE_URL": "ftp://x"}, "base_url"),
    ],
)
def test_semantic_validation(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert needle in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[front\n")
    with pytest.raises(ConfigError):
        load_config(bad, env={})
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml", env={})


def test_secrets_file_must_be_private(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OEXEC_API_KEY=k1\nOEXEC_API_SECRET='s1'\n# comment\n")
    os.chmod(secrets, 0o644)
    with pytest.raises(ConfigError, match="too open"):
        load_config(env={"OEXEC_SECRETS_FILE": str(secrets)})
    os.chmod(secrets, 0o600)
    config = load_config(env={"OEXEC_SECRETS_FILE": str(secrets)})
    assert (config.venue.api_key, config.venue.api_secret) == ("k1", "s1")
    assert read_secrets_file(str(secrets))["OEXEC_API_SECRET"] == "s1"


def test_secrets_never_in_repr() -> None:
    config = load_config(env={"OEXEC_API_KEY": "k-visible?", "OEXEC_API_SECRET": "TOPSECRET"})
    assert "TOPSECRET" not in repr(config)


def test_shipped_config_documents_every_key_with_its_default() -> None:
    path = ROOT / "etc" / "oexec.toml"
    data = tomllib.loads(path.read_text())
    assert load_config(path, env={}) == Config()
    text = path.read_text()
    for section in attrs.fields(Config):
        for field in attrs.fields(
            section.type
            if isinstance(section.type, type)
            else type(getattr(Config(), section.name))
        ):
            if field.name in ("api_key", "api_secret", "bearer_token", "overrides"):
                continue
            assert f"\n{field.name} = " in text, f"[{section.name}] {field.name} undocumented"
    assert set(data) <= {f.name for f in attrs.fields(Config)}

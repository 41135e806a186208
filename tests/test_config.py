"""load_config: defaults, `$SIRE_HOME/config.yaml` parsed into Config, overrides, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sire.config import DEFAULT_MAX_PAYLOAD, Config, load_config
from sire.config import sire_home as home_from
from sire.errors import ConfigError
from sire.model.workflow import ServerSpec

FULL = """\
servers:
  calc:
    url: http://localhost:9000/mcp
    headers:
      Authorization: Bearer token
  files:
    command: [python, -m, files_server]
    env:
      DEBUG: "1"
    cwd: /srv/files
exec:
  allow: [git, make]
templates:
  env: [HOME, CI, MISSING]
http:
  allow_hosts: [api.github.com, localhost]
limits:
  max_payload_bytes: 2048
store:
  url: sqlite:////var/lib/sire/sire.db
"""


def write_config(home: Path, text: str) -> Path:
    path = home / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(home: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config({"SIRE_HOME": str(home)})
    return caught.value


def test_without_a_config_file_every_setting_has_its_default(tmp_path: Path) -> None:
    config = load_config({"SIRE_HOME": str(tmp_path)})

    assert config == Config(home=tmp_path)
    assert config.db_url is None
    assert config.servers == {}
    assert config.exec_allow == ()  # exec is off
    assert config.env_allow == ()
    assert config.http_allow_hosts is None  # any host
    assert config.max_payload_bytes == DEFAULT_MAX_PAYLOAD == 10 * 1024 * 1024
    assert config.cache_dir == tmp_path / "cache"


def test_load_config_reads_the_process_environment_by_default(sire_home: Path) -> None:
    write_config(sire_home, "exec:\n  allow: [git]\n")

    config = load_config()

    assert config.home == sire_home
    assert config.exec_allow == ("git",)


def test_an_empty_config_file_means_every_default(sire_home: Path) -> None:
    write_config(sire_home, "# nothing set yet\n")

    assert load_config({"SIRE_HOME": str(sire_home)}) == Config(home=sire_home)


def test_sire_home_defaults_to_dot_sire_in_the_home_directory_and_expands_a_tilde() -> None:
    assert home_from({}) == Path.home() / ".sire"
    assert home_from({"SIRE_HOME": ""}) == Path.home() / ".sire"
    assert home_from({"SIRE_HOME": "~/elsewhere"}) == Path.home() / "elsewhere"


def test_a_full_config_file_is_parsed_into_the_config_fields(sire_home: Path) -> None:
    write_config(sire_home, FULL)

    config = load_config({"SIRE_HOME": str(sire_home)})

    assert config == Config(
        home=sire_home,
        db_url="sqlite:////var/lib/sire/sire.db",
        servers={
            "calc": ServerSpec(
                url="http://localhost:9000/mcp", headers={"Authorization": "Bearer token"}
            ),
            "files": ServerSpec(
                command=("python", "-m", "files_server"), env={"DEBUG": "1"}, cwd="/srv/files"
            ),
        },
        exec_allow=("git", "make"),
        env_allow=("HOME", "CI", "MISSING"),
        http_allow_hosts=("api.github.com", "localhost"),
        max_payload_bytes=2048,
    )


def test_sire_db_overrides_store_url(sire_home: Path) -> None:
    write_config(sire_home, FULL)

    config = load_config({"SIRE_HOME": str(sire_home), "SIRE_DB": "postgresql://db/sire"})

    assert config.db_url == "postgresql://db/sire"


def test_sire_db_applies_without_a_config_file(tmp_path: Path) -> None:
    config = load_config({"SIRE_HOME": str(tmp_path), "SIRE_DB": "sqlite:///x.db"})

    assert config.db_url == "sqlite:///x.db"


def test_an_empty_sire_db_leaves_store_url_in_force(sire_home: Path) -> None:
    write_config(sire_home, FULL)

    config = load_config({"SIRE_HOME": str(sire_home), "SIRE_DB": ""})

    assert config.db_url == "sqlite:////var/lib/sire/sire.db"


def test_an_empty_allow_hosts_list_allows_no_host(sire_home: Path) -> None:
    write_config(sire_home, "http:\n  allow_hosts: []\n")

    assert load_config({"SIRE_HOME": str(sire_home)}).http_allow_hosts == ()


def test_template_env_returns_only_allow_listed_variables_present_in_the_environ(
    sire_home: Path,
) -> None:
    write_config(sire_home, FULL)
    config = load_config({"SIRE_HOME": str(sire_home)})

    env = config.template_env({"HOME": "/home/ada", "CI": "true", "AWS_SECRET_ACCESS_KEY": "s"})

    assert env == {"HOME": "/home/ada", "CI": "true"}


def test_template_env_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIRE_TEST_VISIBLE", "yes")
    monkeypatch.setenv("SIRE_TEST_HIDDEN", "no")
    config = Config(home=tmp_path, env_allow=("SIRE_TEST_VISIBLE",))

    assert config.template_env() == {"SIRE_TEST_VISIBLE": "yes"}


def test_template_env_is_empty_without_an_allow_list(tmp_path: Path) -> None:
    assert Config(home=tmp_path).template_env({"HOME": "/home/ada"}) == {}


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("exec:\n  allow: git\n", "exec.allow", "a list of strings"),
        ("exec:\n  allow: [git, 1]\n", "exec.allow", "a list of strings"),
        ("templates:\n  env: HOME\n", "templates.env", "a list of strings"),
        ("http:\n  allow_hosts: localhost\n", "http.allow_hosts", "a list of strings"),
        ("store:\n  url: 5\n", "store.url", "a string"),
        ("servers: [calc]\n", "servers", "a mapping"),
        ("servers:\n  x: http://h/mcp\n", "servers.x", "a mapping with 'url' or 'command'"),
        (
            "servers:\n  x:\n    url: http://h/mcp\n    command: [calc]\n",
            "servers.x",
            "a mapping with exactly one of 'url' or 'command'",
        ),
        (
            "servers:\n  x:\n    cwd: /srv\n",
            "servers.x",
            "a mapping with exactly one of 'url' or 'command'",
        ),
        ("servers:\n  x:\n    command: calc\n", "servers.x.command", "a list of strings"),
        (
            "servers:\n  x:\n    url: http://h/mcp\n    headers: [a]\n",
            "servers.x.headers",
            "a mapping",
        ),
        ("limits:\n  max_payload_bytes: -1\n", "limits.max_payload_bytes", "a positive integer"),
        ("limits:\n  max_payload_bytes: 0\n", "limits.max_payload_bytes", "a positive integer"),
        ("limits:\n  max_payload_bytes: true\n", "limits.max_payload_bytes", "a positive integer"),
        ("limits:\n  max_payload_bytes: 10MB\n", "limits.max_payload_bytes", "a positive integer"),
        ("limits:\n  max_payload_bytes: 1.5\n", "limits.max_payload_bytes", "a positive integer"),
    ],
    ids=[
        "exec.allow-string",
        "exec.allow-non-string-item",
        "templates.env-string",
        "http.allow_hosts-string",
        "store.url-integer",
        "servers-list",
        "servers.x-string",
        "servers.x-url-and-command",
        "servers.x-neither",
        "servers.x.command-string",
        "servers.x.headers-list",
        "max_payload_bytes-negative",
        "max_payload_bytes-zero",
        "max_payload_bytes-bool",
        "max_payload_bytes-string",
        "max_payload_bytes-float",
    ],
)
def test_a_setting_of_the_wrong_shape_is_a_config_error_naming_the_file_and_dotted_key(
    sire_home: Path, text: str, key: str, expected: str
) -> None:
    path = write_config(sire_home, text)

    error = load_error(sire_home)

    assert str(error) == f"{path}: '{key}' must be {expected}"
    assert error.exit_code == 3


@pytest.mark.parametrize(
    ("text", "key"),
    [("http: [api.github.com]\n", "http"), ("exec: git\n", "exec"), ("limits: 2048\n", "limits")],
    ids=["http-list", "exec-string", "limits-integer"],
)
def test_a_section_that_is_not_a_mapping_is_a_config_error_naming_it(
    sire_home: Path, text: str, key: str
) -> None:
    path = write_config(sire_home, text)

    assert str(load_error(sire_home)) == f"{path}: '{key}' must be a mapping"


def test_a_server_name_containing_a_dot_is_read(sire_home: Path) -> None:
    write_config(sire_home, "servers:\n  my.calc:\n    url: http://h/mcp\n")

    config = load_config({"SIRE_HOME": str(sire_home)})

    assert config.servers == {"my.calc": ServerSpec(url="http://h/mcp")}


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "servers:\n  my.calc:\n    command: calc\n",
            "servers.my.calc.command",
            "a list of strings",
        ),
        (
            "servers:\n  my.calc:\n    cwd: /srv\n",
            "servers.my.calc",
            "a mapping with exactly one of 'url' or 'command'",
        ),
        (
            "servers:\n  my.calc: http://h/mcp\n",
            "servers.my.calc",
            "a mapping with 'url' or 'command'",
        ),
        (
            "servers:\n  my.calc:\n    url: http://h/mcp\n    env: [A]\n",
            "servers.my.calc.env",
            "a mapping",
        ),
    ],
    ids=["command-string", "neither", "string", "env-list"],
)
def test_an_error_in_a_server_whose_name_contains_a_dot_names_its_full_key(
    sire_home: Path, text: str, key: str, expected: str
) -> None:
    path = write_config(sire_home, text)

    assert str(load_error(sire_home)) == f"{path}: '{key}' must be {expected}"


def test_a_section_left_empty_means_its_defaults(sire_home: Path) -> None:
    write_config(sire_home, "http:\nexec:\nlimits:\nservers:\n")

    assert load_config({"SIRE_HOME": str(sire_home)}) == Config(home=sire_home)


def test_invalid_yaml_is_a_config_error_naming_the_file(sire_home: Path) -> None:
    path = write_config(sire_home, "exec:\n  allow: [git\n")

    message = str(load_error(sire_home))

    assert message.startswith(str(path))
    assert "the config file is not valid YAML" in message


def test_invalid_yaml_is_reported_in_one_line_with_the_line_number(sire_home: Path) -> None:
    path = write_config(sire_home, "exec:\n  allow: [git\n")

    message = str(load_error(sire_home))

    assert "\n" not in message
    assert message.startswith(f"{path}:")
    assert f"{path}:3:" in message or "line 3" in message
    assert message == (
        f"{path}:3: the config file is not valid YAML (expected ',' or ']', but got '<stream end>')"
    )


def test_a_config_file_that_is_not_utf8_is_a_config_error(sire_home: Path) -> None:
    path = sire_home / "config.yaml"
    path.write_bytes(b"exec:\n  allow: [\xff\xfe]\n")

    message = str(load_error(sire_home))

    assert message.startswith(str(path))
    assert "the config file is not valid YAML" in message


@pytest.mark.parametrize(
    "text", ["- exec\n- http\n", "just a string\n", "42\n"], ids=["list", "string", "integer"]
)
def test_a_config_file_whose_top_level_is_not_a_mapping_is_a_config_error(
    sire_home: Path, text: str
) -> None:
    path = write_config(sire_home, text)

    assert str(load_error(sire_home)) == f"{path}: the config file must be a mapping"


def test_an_unreadable_config_file_is_a_config_error_naming_it(sire_home: Path) -> None:
    path = sire_home / "config.yaml"
    path.mkdir()

    message = str(load_error(sire_home))

    assert message.startswith(f"{path}: cannot read the config file (")
    assert "\n" not in message

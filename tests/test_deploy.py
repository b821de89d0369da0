"""The deployment files and the README keep up with the settings: every GATEWAY_* setting is in the example
environment file and in the README's table, and nothing there is unknown."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}


def test_the_example_environment_file_sets_every_setting() -> None:
    lines = (ROOT / "deploy" / "gateway.env").read_text(encoding="utf-8").splitlines()
    names = {line.split("=", 1)[0].strip("# ") for line in lines if re.match(r"#? ?GATEWAY_[A-Z_]+=", line)}
    assert names == SETTINGS
    values = {
        line.split("=", 1)[0].removeprefix("GATEWAY_").lower(): line.split("=", 1)[1]
        for line in lines
        if line.startswith("GATEWAY_") and line.split("=", 1)[1]
    }
    Settings.model_validate(values)  # every value there is one the settings take


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| variable | default | meaning |") :].split("\n\n", 1)[0]
    listed: set[str] = set()
    for cell in re.findall(r"^\| (`GATEWAY_[^|]+) \|", table, flags=re.MULTILINE):
        names = re.findall(r"`(GATEWAY_[A-Z_]+|_[A-Z_]+)`", cell)
        group = "_".join(
            names[0].split("_")[:2]
        )  # `GATEWAY_BACNET_VENDOR_ID`, `_VENDOR_NAME`: GATEWAY_BACNET
        listed.update(group + name if name.startswith("_") else name for name in names)
    assert SETTINGS - listed == set()


def _env_file() -> tuple[list[str], dict[str, str]]:
    lines = (ROOT / "deploy" / "gateway.env").read_text(encoding="utf-8").splitlines()
    values = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in lines if line.startswith("GATEWAY_")}
    return lines, values


def _image_env() -> dict[str, str]:
    """The GATEWAY_* values the Containerfile's ENV sets."""
    containerfile = (ROOT / "deploy" / "Containerfile").read_text(encoding="utf-8")
    block = containerfile[containerfile.index("\nENV GATEWAY_") :].split("\n\n", 1)[0]
    return dict(re.findall(r"(GATEWAY_[A-Z_]+)=(\S+)", block))


def _settings(values: dict[str, str]) -> dict[str, object]:
    """Every setting as GATEWAY_* name and the value it takes, from `values` or the built-in default."""
    given = Settings.model_validate({k.removeprefix("GATEWAY_").lower(): v for k, v in values.items() if v})
    return {f"GATEWAY_{name.upper()}": getattr(given, name) for name in Settings.model_fields}


def _differing(values: dict[str, str], than: dict[str, object]) -> dict[str, object]:
    """The settings `values` sets to something else than `than` has, with what `than` has."""
    taken = _settings(values)
    return {name: than[name] for name in values if taken[name] != than[name]}


DEFAULTS = _settings({})


def test_the_environment_file_says_which_values_are_not_the_defaults() -> None:
    """The header names every value that differs from the built-in default, and that value's comment says the
    default ("Built-in default: ...") and why; a value that is the default says nothing of the kind."""
    lines, values = _env_file()
    differing = _differing(values, DEFAULTS)
    assert "GATEWAY_MODBUS_PORT" in differing  # 502, the standard port, for the systemd unit
    header = "\n".join(lines[: lines.index("")])
    assert set(re.findall(r"GATEWAY_[A-Z_]+", header)) == set(differing)
    comment: list[str] = []
    for line in lines:
        if line.startswith("#"):
            comment.append(line)
            continue
        if line.startswith("GATEWAY_"):
            name = line.split("=", 1)[0]
            said = re.search(r"Built-in default: ([^ ;,)]+)", " ".join(comment))
            if name in differing:
                assert said is not None, f"{name}: its comment should say the built-in default and why"
                assert said.group(1).rstrip(".") == str(differing[name]), name
            else:
                assert said is None, f"{name} is the built-in default"
        comment = []


def test_the_deployment_files_agree_on_the_modbus_port() -> None:
    _, values = _env_file()
    systemd = int(values["GATEWAY_MODBUS_PORT"])
    unit = (ROOT / "deploy" / "ocpp-gateway.service").read_text(encoding="utf-8")
    guide = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    containerfile = (ROOT / "deploy" / "Containerfile").read_text(encoding="utf-8")
    # systemd: the unit and the guide say the port gateway.env sets, and the unit lets the gateway bind it
    assert f"GATEWAY_MODBUS_PORT={systemd}" in unit
    assert f"sets `GATEWAY_MODBUS_PORT={systemd}`" in guide
    assert f"`GATEWAY_MODBUS_PORT={systemd}`" in guide.split("## 1.")[0]  # the overview of gateway.env
    assert ("AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit) == (systemd < 1024)
    # the container: the port it listens on is exposed and mapped to 502, in the image's example and the guide
    inside = _settings(_image_env())["GATEWAY_MODBUS_PORT"]
    assert re.search(rf"^EXPOSE .*\b{inside}\b", containerfile, flags=re.MULTILINE)
    assert f"-p 502:{inside}" in containerfile and f"-p 502:{inside}" in guide
    assert f"listens on {inside} inside the container" in guide


def test_the_container_guide_names_what_to_change_for_env_file() -> None:
    """gateway.env is written for systemd: used with --env-file, each value the image would take otherwise is
    named where the guide suggests it, unless the guide's `podman run` passes that same value."""
    _, values = _env_file()
    guide = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    run = guide[guide.index("podman run -d") :].split("```", 1)[0]
    advice = guide[guide.index("--env-file") :].split("\n\n", 1)[0]
    for name in _differing(values, _settings(_image_env())):
        assert f"-e {name}={values[name]}" in run or f"`{name}=" in advice, name

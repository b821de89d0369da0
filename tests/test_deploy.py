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

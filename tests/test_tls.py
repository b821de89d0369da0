"""wss: with a certificate and key set, chargers connect over TLS (the amina guide's provisioned certificates)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from gateway.mapping import Mapping
from gateway.server import running
from tests.conftest import connect_charger, make_settings

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make a test certificate"
)


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_charger_connects_over_wss(tmp_path: Path, mapping: Mapping) -> None:
    cert, key = _certificate(tmp_path)
    settings = make_settings(tmp_path, tls_certfile=cert, tls_keyfile=key)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with running(settings, mapping) as gateway:
        assert gateway.ws_url.startswith("wss://")
        async with connect_charger(gateway, "CP1", ssl=client_context) as cp:
            assert (await cp.boot()).status == "Accepted"

"""``hub user`` and ``hub serve`` as real processes: accounts with a one-time password, the
forced password change, and serving over TLS (1.2 minimum) with HSTS."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pyotp
from sqlalchemy import update
from web_support import client, csrf_of, get_csrf, login, web_settings

from hub.config import Settings
from hub.crypto.at_rest import generate_key
from hub.storage.db import open_database
from hub.storage.models import Creditor, User
from hub.web.app import tls_context

HUB = str(Path(sys.executable).parent / "hub")


def _hub(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_user_add_list_and_forced_password_change_over_tls(
    hub_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    assert _hub(hub_env, "db", "upgrade").returncode == 0
    db = open_database(settings)
    async with db.transaction() as session:
        session.add(Creditor(code="CRA", name="Creditor A"))
    done = _hub(
        hub_env,
        "user",
        "add",
        "cora",
        "--role",
        "creditor",
        "--creditor",
        "CRA",
        "--email",
        "cora@example.org",
    )
    assert done.returncode == 0, done.stderr
    initial = re.search(r"initial password \(shown once.*\): (\S+)", done.stdout)
    assert initial
    done = _hub(
        hub_env,
        "user",
        "add",
        "aud",
        "--role",
        "auditor",
        "--email",
        "a@example.org",
        "--password-stdin",
        stdin="an operator's passphrase\n",
    )
    assert done.returncode == 0 and "initial password" not in done.stdout
    bad = _hub(hub_env, "user", "add", "x", "--role", "creditor", "--email", "x@example.org")
    assert bad.returncode == 2 and "--creditor" in bad.stderr
    listing = _hub(hub_env, "user", "list").stdout
    assert re.search(r"\tcora\tcreditor\tCRA\tactive\tno-totp", listing)
    assert "\taud\tauditor\t-\t" in listing

    secret = pyotp.random_base32()
    async with db.transaction() as session:
        await session.execute(
            update(User).where(User.username == "cora").values(totp_secret=secret)
        )
    await db.close()

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    env = {
        **hub_env,
        "HUB_WEB_SESSION_SECRET": generate_key(),
        "HUB_WEB_TLS_CERT_FILE": str(cert),
        "HUB_WEB_TLS_KEY_FILE": str(key),
    }
    server = await asyncio.create_subprocess_exec(
        HUB, "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert server.stderr is not None
        async with asyncio.timeout(60):
            while True:
                line = (await server.stderr.readline()).decode()
                assert line, "hub serve ended early"
                if "serving on" in line:
                    break
        assert f"https://127.0.0.1:{port}" in line, line
        context = ssl.create_default_context(cafile=str(cert))
        base = f"https://127.0.0.1:{port}"
        # TLS 1.3 is preferred, 1.2 still accepted; the context refuses anything older
        for maximum, expected in ((None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
            probe = ssl.create_default_context(cafile=str(cert))
            if maximum is not None:
                probe.maximum_version = maximum
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=probe)
            assert writer.get_extra_info("ssl_object").version() == expected
            writer.close()
            await writer.wait_closed()
        server_context = tls_context(web_settings(settings, tls_cert_file=cert, tls_key_file=key))
        assert server_context is not None
        assert server_context.minimum_version == ssl.TLSVersion.TLSv1_2
        async with client(base, context) as http:
            response = await login(http, "cora", secret, password=initial.group(1))
            assert str(response.url) == base + "/account/password"
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            async with http.get("/cases", allow_redirects=False) as answer:
                assert answer.headers["Location"] == "/account/password"
            token = await get_csrf(http, "/account/password")
            new = "my own passphrase now"
            async with http.post(
                "/account/password",
                data={
                    "current": initial.group(1),
                    "new_password": new,
                    "repeat": new,
                    "csrf_token": token,
                },
            ) as answer:
                assert answer.status == 200
            response = await login(http, "cora", secret, password=new)
            assert str(response.url) == base + "/"
            async with http.get("/cases") as answer:
                assert answer.status == 200 and csrf_of(await answer.text())
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)

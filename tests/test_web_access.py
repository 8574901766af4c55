"""Who may reach what, on both backends: every declared route requested by every role and
anonymously against the permission table; creditors isolated from each other's cases (404
by URL and API); internal notes hidden from creditors; hostile mail bodies shown as text
under a strict CSP; API token scopes; the audit trail of reads and its chain."""

from __future__ import annotations

import csv
import io

import aiohttp
from sqlalchemy import select
from web_support import Seed, client, csrf_of, get_csrf, login, seed, serve, web_settings

from hub.config import Settings
from hub.security import audit
from hub.security.roles import ROLE_PERMISSIONS, Permission, Role, Scope
from hub.services import users
from hub.storage.db import Database
from hub.storage.models import AuditEntry, ThreadEntry
from hub.web.route_table import Kind, Route
from hub.web.routes import ROUTES
from hub.web.security_headers import CSP

ROLES = ("admin", "collector", "creditor", "auditor")
HOSTILE = (
    '<script>alert("x")</script>\n<img src="https://evil.example/p.png" onerror="alert(1)">'
    '\n<a href="javascript:alert(2)" onmouseover="alert(3)">click</a>'
)


def _path(route: Route, data: Seed, spare_user: int) -> str:
    return (
        route.path.replace("{case_id}", str(data.case_a))
        .replace("{attachment_id}", str(data.attachment_a))
        .replace("{user_id}", str(spare_user))
        .replace("{token}", "no-such-token")
        .replace("{task_id}", "999999")
        .replace("{inbound_id}", "999999")
        .replace("{plan_id}", "999999")
        .replace("{entry_id}", "999999")
    )


def _payload(route: Route) -> dict[str, object]:
    if route.kind is Kind.API:
        bodies: dict[str, object] = {
            "api_case_comment": {"json": {"text": "from the matrix"}},
            "api_case_close": {"json": {"event": "withdrawn"}},
            "api_import": {"data": b"reference\n", "headers": {"Content-Type": "text/csv"}},
        }
        return dict(bodies.get(route.name, {}))  # type: ignore[call-overload]
    forms = {
        "case_note": {"text": "note from the matrix"},
        "case_comment": {"text": "comment from the matrix"},
        "case_pause": {"event": "put_on_hold"},
        "case_close": {"event": "closed"},
        "triage_label": {"label": "dispute"},
        "triage_attach": {"reference": "A-1"},
        "triage_discard": {"confirm": "yes"},
        "case_plan": {"decision": "reject"},
        "case_draft": {"decision": "discard"},
        "login_post": {"username": "nobody", "password": "nothing"},
        "password_forgot_post": {"identifier": "nobody"},
        "account_password_post": {"current": "wrong", "new_password": "x", "repeat": "y"},
    }
    if route.name == "cases_import_post":
        form = aiohttp.FormData()
        form.add_field("file", b"creditor,reference\n", filename="x.csv")
        return {"form": form}
    return {"form": dict(forms.get(route.name, {}))}


async def _request(
    http: aiohttp.ClientSession, route: Route, path: str, csrf: str
) -> tuple[int, str]:
    kwargs = _payload(route) if route.changes_state else {}
    headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
    if route.changes_state and route.kind is Kind.API:
        headers["X-CSRF-Token"] = csrf
    form = kwargs.pop("form", None)
    if isinstance(form, aiohttp.FormData):
        form.add_field("csrf_token", csrf)
        kwargs["data"] = form
    elif isinstance(form, dict):
        kwargs["data"] = {**form, "csrf_token": csrf}
    async with http.request(
        route.method, path, headers=headers, allow_redirects=False, **kwargs
    ) as response:
        await response.read()
        return response.status, response.headers.get("Location", "")


def _expected(role: str | None, route: Route) -> str:
    """What the permission table says: allowed, login, forbidden, or to_home."""
    if route.permission is Permission.PUBLIC:
        return "allowed"
    if route.permission is Permission.PORTAL:
        return "login"  # a debtor's portal session only: no staff login opens the portal
    if route.permission is Permission.SECOND_FACTOR:
        return "login" if role is None else "to_home"
    if role is None:
        return "login"
    return "allowed" if route.permission in ROLE_PERMISSIONS[Role(role)] else "forbidden"


def _observed(route: Route, status: int, location: str) -> str:
    if route.permission is Permission.PUBLIC and status not in (403,) and status < 500:
        return "allowed"  # reached its handler (a wrong login answers 401 from there)
    if status == 401 or (status == 303 and location == "/login"):
        return "login"
    if status == 403:
        return "forbidden"
    if status == 303 and location == "/" and route.permission is Permission.SECOND_FACTOR:
        return "to_home"
    assert status < 500, (route.name, status)
    if not route.changes_state and route.permission is not Permission.PUBLIC:
        assert status == 200, (route.name, status)
    return "allowed"


async def test_every_route_for_every_role_matches_the_permission_table(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    spare = data.accounts["creditor_b"][2]
    logout = [r for r in ROUTES if r.name == "logout"]
    ordered = [r for r in ROUTES if r.name != "logout"] + logout  # logging out last
    mismatches = []
    async with serve(s, database) as base:
        for role in (None, *ROLES):
            async with client(base) as http:
                if role is not None:
                    username, secret, _ = data.accounts[role]
                    response = await login(http, username, secret)
                    assert str(response.url) == base + "/", role
                for route in ordered:
                    csrf = await get_csrf(http, "/login" if role is None else "/")
                    status, location = await _request(http, route, _path(route, data, spare), csrf)
                    seen = _observed(route, status, location)
                    if seen != _expected(role, route):
                        mismatches.append((role, route.name, status, seen))
    assert mismatches == []
    # the table itself says what the issue asks for
    assert Permission.AUDIT_READ not in ROLE_PERMISSIONS[Role.CREDITOR]
    assert Permission.CASES_READ not in ROLE_PERMISSIONS[Role.AUDITOR]
    assert Permission.CASE_NOTE not in ROLE_PERMISSIONS[Role.CREDITOR]


async def test_creditor_cannot_reach_another_creditors_case(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["creditor"][:2])
        csrf = await get_csrf(http, "/")
        b = data.case_b
        for path in (
            f"/cases/{b}",
            f"/api/cases/{b}",
            f"/cases/{b}/attachments/{data.attachment_b}",
            f"/cases/{data.case_a}/attachments/{data.attachment_b}",  # B's file via A's case
            "/cases/999999",
            "/cases/not-a-number",
        ):
            async with http.get(path) as response:
                assert response.status == 404, path
                assert "reply on B-1" not in await response.text()
        async with http.post(
            f"/cases/{b}/comments", data={"text": "hi", "csrf_token": csrf}
        ) as response:
            assert response.status == 404
        async with http.post(
            f"/api/cases/{b}/close", json={"event": "withdrawn"}, headers={"X-CSRF-Token": csrf}
        ) as response:
            assert response.status == 404
        for query in ("", "B-1", "Bob Example", "bob@example.net"):
            async with http.get("/api/cases", params={"q": query}) as response:
                refs = [c["reference"] for c in (await response.json())["cases"]]
                assert "B-1" not in refs
        async with http.get("/api/cases", params={"q": "alice@example.org"}) as response:
            assert [c["reference"] for c in (await response.json())["cases"]] == ["A-1"]
        async with http.get(f"/cases/{data.case_a}/attachments/{data.attachment_a}") as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert await response.read() == b"%PDF"
    async with database.sessions() as session:
        kinds = (
            (await session.execute(select(ThreadEntry.kind).where(ThreadEntry.case_id == b)))
            .scalars()
            .all()
        )
    assert "state_change" not in kinds and "creditor_comment" not in kinds


async def test_collector_search_and_internal_notes_hidden_from_creditor(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with serve(s, database) as base, client(base) as collector, client(base) as creditor:
        await login(collector, *data.accounts["collector"][:2])
        for query, expected in (
            ("B-1", "B-1"),
            ("bob example", "B-1"),
            ("ALICE@example.org", "A-1"),
        ):
            async with collector.get("/cases", params={"q": query}) as response:
                html = await response.text()
                assert f">{expected}</a>" in html
                other = "A-1" if expected == "B-1" else "B-1"
                assert f">{other}</a>" not in html
        csrf = await get_csrf(collector, f"/cases/{data.case_a}")
        async with collector.post(
            f"/cases/{data.case_a}/notes",
            data={"text": "secret collector note", "csrf_token": csrf},
        ) as response:
            assert "secret collector note" in await response.text()
        async with collector.post(
            f"/cases/{data.case_a}/pause", data={"event": "put_on_hold", "csrf_token": csrf}
        ) as response:
            assert 'id="case-state">on_hold<' in await response.text()

        await login(creditor, *data.accounts["creditor"][:2])
        async with creditor.get(f"/cases/{data.case_a}") as response:
            html = await response.text()
        assert "reply on A-1" in html and "secret collector note" not in html
        assert "put_on_hold" in html  # the state change itself is not internal
        async with creditor.get(f"/api/cases/{data.case_a}") as response:
            body = await response.json()
        assert all(not e["internal"] for e in body["thread"])
        assert "secret collector note" not in str(body)
        csrf = await get_csrf(creditor, f"/cases/{data.case_a}")
        async with creditor.post(
            f"/cases/{data.case_a}/close", data={"event": "withdrawn", "csrf_token": csrf}
        ) as response:
            assert 'id="case-state">withdrawn<' in await response.text()


async def test_hostile_body_is_harmless_text_under_strict_csp(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with database.transaction() as session:
        session.add(
            ThreadEntry(
                case_id=data.case_a,
                seq=3,
                kind="inbound",
                actor="debtor",
                subject='<b onclick="x()">Re</b>',
                body=HOSTILE,
                meta={"why": "<script>meta</script>"},
            )
        )
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        async with http.get(f"/cases/{data.case_a}") as response:
            html = await response.text()
            assert response.headers["Content-Security-Policy"] == CSP
            assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in html
    assert "<img" not in html
    assert "onerror=" not in html.replace("onerror=&#34;", "")
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=&#34;https://evil.example/p.png&#34; onerror=&#34;alert(1)&#34;&gt;" in html
    assert "&lt;b onclick=&#34;x()&#34;&gt;Re&lt;/b&gt;" in html


async def test_reads_are_audited_and_the_chain_verifies(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    _, _, collector_id = data.accounts["collector"]
    async with serve(s, database) as base, client(base) as http, client(base) as auditor:
        await login(http, *data.accounts["collector"][:2])
        async with http.get(f"/cases/{data.case_a}") as response:
            assert response.status == 200
        async with http.get("/cases", params={"q": "Alice Example"}) as response:
            assert response.status == 200
        await login(auditor, *data.accounts["auditor"][:2])
        async with auditor.get("/audit") as response:
            html = await response.text()
            assert "Chain intact" in html and "case.read" in html
        async with auditor.get("/audit.csv") as response:
            assert response.headers["Content-Disposition"].startswith("attachment")
            rows = list(csv.DictReader(io.StringIO(await response.text())))
    async with database.sessions() as session:
        entries = (await session.execute(select(AuditEntry))).scalars().all()
        assert await audit.verify_chain(session) is None
    reads = [e for e in entries if e.action == "case.read"]
    assert len(reads) == 1
    assert reads[0].actor == f"user:{collector_id}"
    assert reads[0].object_id == str(data.case_a) and reads[0].remote_addr == "127.0.0.1"
    listing = [e for e in entries if e.action == "case.list"][-1]
    assert listing.details["case_ids"] == [data.case_a]
    assert "Alice" not in str(listing.details)  # the search term is personal data
    assert any(row["action"] == "case.read" for row in rows)
    assert "audit.read" in {e.action for e in entries}


async def test_api_tokens_are_scoped_and_revocable(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    token_id, token = await users.create_api_token(
        database, data.accounts["creditor"][0], "erp", [Scope.CASES_READ]
    )
    async with serve(s, database) as base, client(base) as http:
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get("/api/cases", headers=auth) as response:
            assert response.status == 200
            assert [c["reference"] for c in (await response.json())["cases"]] == ["A-1"]
        async with http.get(f"/api/cases/{data.case_b}", headers=auth) as response:
            assert response.status == 404
        # a bearer token needs no CSRF token, but its scope must cover the action
        async with http.post(
            f"/api/cases/{data.case_a}/comments", json={"text": "hi"}, headers=auth
        ) as response:
            assert response.status == 403
        async with http.get("/api/openapi.json") as response:
            document = await response.json()
        api_paths = {r.path for r in ROUTES if r.kind is Kind.API}
        assert set(document["paths"]) == api_paths
        assert document["openapi"].startswith("3.")
        await users.revoke_api_token(database, token_id)
        async with http.get("/api/cases", headers=auth) as response:
            assert response.status == 401
        async with http.get("/cases", headers=auth, allow_redirects=False) as response:
            assert response.status == 303  # pages never take bearer tokens


def test_csrf_helper_finds_the_token() -> None:
    assert csrf_of('<input name="csrf_token" value="abc">') == "abc"

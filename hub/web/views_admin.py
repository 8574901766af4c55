"""Admin and auditor pages: the accounts (with session revocation) and the audit log."""

from __future__ import annotations

from aiohttp import web

from hub.errors import NotFoundError
from hub.services import audit_view, users
from hub.web import keys
from hub.web.render import render


async def user_list(request: web.Request) -> web.StreamResponse:
    rows = await users.list_users(request.app[keys.DATABASE])
    return render(request, "users.html", {"users": rows})


async def revoke_sessions(request: web.Request) -> web.StreamResponse:
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError:
        raise NotFoundError("no such user") from None
    await users.admin_revoke_sessions(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], user_id, request.remote
    )
    raise web.HTTPSeeOther(location="/admin/users")


async def audit_log(request: web.Request) -> web.StreamResponse:
    try:
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        page = 1
    entries, status = await audit_view.audit_page(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], page, request.remote
    )
    return render(request, "audit.html", {"entries": entries, "status": status, "page": page})


async def audit_export(request: web.Request) -> web.StreamResponse:
    text = await audit_view.audit_csv(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], request.remote
    )
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )

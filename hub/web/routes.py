"""Every route of the web application with the one permission it needs: the permission table.

The auth middleware checks each request against this table; the permission-matrix test
requests every route here with every role.
"""

from __future__ import annotations

from hub.security.roles import P
from hub.web import (
    api,
    static,
    views_admin,
    views_auth,
    views_cases,
    views_decisions,
    views_portal,
    views_portal_gate,
    views_triage,
)
from hub.web.route_table import Kind, Route

ROUTES: tuple[Route, ...] = (
    Route("GET", "/static/hub.css", static.stylesheet, P.PUBLIC, "static_css"),
    Route("GET", "/login", views_auth.login_form, P.PUBLIC, "login"),
    Route("POST", "/login", views_auth.login_submit, P.PUBLIC, "login_post"),
    Route("GET", "/login/totp", views_auth.totp_form, P.SECOND_FACTOR, "login_totp"),
    Route("POST", "/login/totp", views_auth.totp_submit, P.SECOND_FACTOR, "login_totp_post"),
    Route("GET", "/login/enrol", views_auth.enrol_form, P.SECOND_FACTOR, "login_enrol"),
    Route("POST", "/login/enrol", views_auth.enrol_submit, P.SECOND_FACTOR, "login_enrol_post"),
    Route("POST", "/logout", views_auth.logout, P.AUTHENTICATED, "logout"),
    Route("GET", "/password/forgot", views_auth.forgot_form, P.PUBLIC, "password_forgot"),
    Route("POST", "/password/forgot", views_auth.forgot_submit, P.PUBLIC, "password_forgot_post"),
    Route("GET", "/password/reset/{token}", views_auth.reset_form, P.PUBLIC, "password_reset"),
    Route(
        "POST",
        "/password/reset/{token}",
        views_auth.reset_submit,
        P.PUBLIC,
        "password_reset_post",
    ),
    Route(
        "GET", "/account/password", views_auth.password_form, P.AUTHENTICATED, "account_password"
    ),
    Route(
        "POST",
        "/account/password",
        views_auth.password_submit,
        P.AUTHENTICATED,
        "account_password_post",
    ),
    Route("GET", "/", views_cases.dashboard, P.AUTHENTICATED, "dashboard"),
    Route("GET", "/cases", views_cases.case_list, P.CASES_READ, "cases"),
    Route("GET", "/cases/import", views_cases.import_form, P.CASES_IMPORT, "cases_import"),
    Route("POST", "/cases/import", views_cases.import_submit, P.CASES_IMPORT, "cases_import_post"),
    Route("GET", "/cases/{case_id}", views_decisions.case_page, P.CASES_READ, "case"),
    Route("POST", "/cases/{case_id}/notes", views_cases.add_note, P.CASE_NOTE, "case_note"),
    Route(
        "POST", "/cases/{case_id}/comments", views_cases.add_comment, P.CASE_COMMENT, "case_comment"
    ),
    Route("POST", "/cases/{case_id}/pause", views_cases.pause_resume, P.CASE_PAUSE, "case_pause"),
    Route("POST", "/cases/{case_id}/close", views_cases.close_withdraw, P.CASE_CLOSE, "case_close"),
    Route(
        "GET",
        "/cases/{case_id}/attachments/{attachment_id}",
        views_cases.download,
        P.CASES_READ,
        "case_attachment",
    ),
    # the collector's work: the triage queue and decisions on a case
    Route("GET", "/triage", views_triage.queue, P.TRIAGE, "triage"),
    Route("POST", "/triage/tasks/{task_id}/label", views_triage.label, P.TRIAGE, "triage_label"),
    Route("POST", "/triage/tasks/{task_id}/done", views_triage.done, P.TRIAGE, "triage_done"),
    Route(
        "POST",
        "/triage/messages/{inbound_id}/attach",
        views_triage.attach,
        P.TRIAGE,
        "triage_attach",
    ),
    Route(
        "POST",
        "/triage/messages/{inbound_id}/discard",
        views_triage.discard,
        P.TRIAGE,
        "triage_discard",
    ),
    Route("POST", "/cases/{case_id}/reply", views_decisions.reply, P.CASE_REPLY, "case_reply"),
    Route(
        "POST",
        "/cases/{case_id}/plans/{plan_id}",
        views_decisions.plan,
        P.CASE_DECIDE,
        "case_plan",
    ),
    Route(
        "POST",
        "/cases/{case_id}/revert/{entry_id}",
        views_decisions.revert,
        P.CASE_DECIDE,
        "case_revert",
    ),
    Route(
        "POST",
        "/cases/{case_id}/address/{entry_id}",
        views_decisions.address,
        P.CASE_DECIDE,
        "case_address",
    ),
    Route(
        "POST",
        "/cases/{case_id}/drafts/{entry_id}",
        views_decisions.draft,
        P.CASE_DECIDE,
        "case_draft",
    ),
    Route("GET", "/report.csv", views_decisions.report, P.CASES_REPORT, "cases_report"),
    Route("GET", "/admin/users", views_admin.user_list, P.USERS_MANAGE, "admin_users"),
    Route(
        "POST",
        "/admin/users/{user_id}/revoke",
        views_admin.revoke_sessions,
        P.USERS_MANAGE,
        "admin_revoke",
    ),
    Route("GET", "/audit", views_admin.audit_log, P.AUDIT_READ, "audit"),
    Route("GET", "/audit.csv", views_admin.audit_export, P.AUDIT_READ, "audit_csv"),
    # the debtor portal: the door is public (it shows nothing of a case), the rest needs a
    # portal session, which no staff login gives
    Route("GET", "/portal/c/{token}", views_portal_gate.gate, P.PUBLIC, "portal_gate"),
    Route("POST", "/portal/c/{token}/code", views_portal_gate.send_code, P.PUBLIC, "portal_code"),
    Route(
        "POST",
        "/portal/c/{token}/verify",
        views_portal_gate.verify_code,
        P.PUBLIC,
        "portal_verify",
    ),
    Route(
        "POST",
        "/portal/c/{token}/postal",
        views_portal_gate.verify_postal,
        P.PUBLIC,
        "portal_postal",
    ),
    Route(
        "GET",
        "/portal/opt-out/{token}",
        views_portal_gate.opt_out_link,
        P.PUBLIC,
        "portal_opt_out_link",
    ),
    Route("GET", "/portal/case", views_portal.case_page, P.PORTAL, "portal_case"),
    Route("POST", "/portal/case/reply", views_portal.reply, P.PORTAL, "portal_reply"),
    Route("POST", "/portal/case/promise", views_portal.promise, P.PORTAL, "portal_promise"),
    Route("POST", "/portal/case/plan", views_portal.plan, P.PORTAL, "portal_plan"),
    Route("POST", "/portal/case/dispute", views_portal.dispute, P.PORTAL, "portal_dispute"),
    Route("POST", "/portal/case/contact", views_portal.contact, P.PORTAL, "portal_contact"),
    Route("POST", "/portal/case/key", views_portal.key, P.PORTAL, "portal_key"),
    Route("POST", "/portal/case/opt-out", views_portal.opt_out, P.PORTAL, "portal_opt_out"),
    Route("POST", "/portal/logout", views_portal_gate.logout, P.PORTAL, "portal_logout"),
    Route(
        "GET", "/api/openapi.json", api.openapi, P.PUBLIC, "api_openapi", Kind.API, "This document"
    ),
    Route(
        "GET",
        "/api/cases",
        api.list_cases,
        P.CASES_READ,
        "api_cases",
        Kind.API,
        "Cases visible to the caller; ?q= reference, name or email; ?page=",
    ),
    Route(
        "GET",
        "/api/cases/{case_id}",
        api.get_case,
        P.CASES_READ,
        "api_case",
        Kind.API,
        "A case and its thread (creditors: without internal notes)",
    ),
    Route(
        "POST",
        "/api/cases/{case_id}/comments",
        api.add_comment,
        P.CASE_COMMENT,
        "api_case_comment",
        Kind.API,
        "Add a creditor comment {text}",
    ),
    Route(
        "POST",
        "/api/cases/{case_id}/close",
        api.close_case,
        P.CASE_CLOSE,
        "api_case_close",
        Kind.API,
        "Close or withdraw a case {event, reason}",
    ),
    Route(
        "POST",
        "/api/import",
        api.import_cases,
        P.CASES_IMPORT,
        "api_import",
        Kind.API,
        "Import new cases from the CSV body (text/csv)",
    ),
)

"""Roles, permissions and API scopes: the one table of who may do what.

Every web route declares one :class:`Permission` (see :mod:`hub.web.routes`); the web
middleware grants a request when the caller's role holds it (and, for an API token, when one
of the token's scopes covers it). Which *objects* a caller may see is decided separately, in
the services, by :class:`Principal.creditor_scope`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COLLECTOR = "collector"
    CREDITOR = "creditor"
    AUDITOR = "auditor"


class Permission(StrEnum):
    #: anyone, logged in or not (login page, static files, the OpenAPI document)
    PUBLIC = "public"
    #: a password was accepted and the second factor is still due (TOTP, enrolment)
    SECOND_FACTOR = "second_factor"
    #: any fully logged-in user (dashboard, logout, own password)
    AUTHENTICATED = "authenticated"
    #: a debtor with a portal session for one case (no staff role holds it)
    PORTAL = "portal"
    CASES_READ = "cases:read"
    CASE_NOTE = "case:note"
    CASE_PAUSE = "case:pause"
    CASE_COMMENT = "case:comment"
    CASE_CLOSE = "case:close"
    CASES_IMPORT = "cases:import"
    #: the triage queue and its decisions (confirm or correct an intent, attach, discard)
    TRIAGE = "triage"
    #: write to the debtor from a case's thread
    CASE_REPLY = "case:reply"
    #: decide on a case: plans, answer drafts, reverting a decision, a debtor's new address
    CASE_DECIDE = "case:decide"
    #: download the report of one's cases (CSV)
    CASES_REPORT = "cases:report"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({P.AUTHENTICATED, P.USERS_MANAGE, P.AUDIT_READ}),
    Role.COLLECTOR: frozenset(
        {
            P.AUTHENTICATED,
            P.CASES_READ,
            P.CASE_NOTE,
            P.CASE_PAUSE,
            P.CASES_IMPORT,
            P.TRIAGE,
            P.CASE_REPLY,
            P.CASE_DECIDE,
        }
    ),
    Role.CREDITOR: frozenset(
        {
            P.AUTHENTICATED,
            P.CASES_READ,
            P.CASE_COMMENT,
            P.CASE_CLOSE,
            P.CASES_IMPORT,
            P.CASES_REPORT,
        }
    ),
    Role.AUDITOR: frozenset({P.AUTHENTICATED, P.AUDIT_READ}),
}


class Scope(StrEnum):
    """What an API token may do, on top of what its user's role allows."""

    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    IMPORT = "import"


SCOPE_PERMISSIONS: dict[Scope, frozenset[Permission]] = {
    Scope.CASES_READ: frozenset({P.CASES_READ, P.CASES_REPORT}),
    Scope.CASES_WRITE: frozenset({P.CASE_COMMENT, P.CASE_CLOSE, P.CASE_NOTE, P.CASE_PAUSE}),
    Scope.IMPORT: frozenset({P.CASES_IMPORT}),
}


def role_allows(role: Role, permission: Permission) -> bool:
    if permission is P.PUBLIC:
        return True
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user or an API token acting for one."""

    user_id: int
    username: str
    role: Role
    creditor_id: int | None
    #: set for API tokens: the permissions beyond which the token may not go
    token_id: int | None = None
    scopes: frozenset[Scope] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.role is Role.CREDITOR and self.creditor_id is None:
            # a creditor user without a creditor would otherwise see every creditor's cases
            raise ValueError(f"creditor user {self.user_id} belongs to no creditor")

    @property
    def actor(self) -> str:
        """How the thread and the audit log name this caller."""
        if self.token_id is not None:
            return f"token:{self.token_id}"
        return f"user:{self.user_id}"

    @property
    def creditor_scope(self) -> int | None:
        """The only creditor whose cases this caller may see, or None for all of them."""
        return self.creditor_id if self.role is Role.CREDITOR else None

    def allows(self, permission: Permission) -> bool:
        if permission is P.PUBLIC:
            return True
        if not role_allows(self.role, permission):
            return False
        if self.token_id is None:
            return True
        return any(permission in SCOPE_PERMISSIONS[scope] for scope in self.scopes)

"""Security: the audit log (and, alongside it, passwords, TOTP and roles)."""

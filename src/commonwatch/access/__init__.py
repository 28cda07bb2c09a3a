"""Accounts and access: users, roles, tokens, sessions, tenancy, the audit log."""

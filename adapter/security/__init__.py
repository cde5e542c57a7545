"""Security: SMART Backend Services authentication, scopes, tenancy, pseudonymisation and audit."""

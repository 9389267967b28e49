"""Tenants: clients, API keys, scopes, authentication and throttles."""

"""Tokens, roles and the one rule table; redaction of secrets for observers."""

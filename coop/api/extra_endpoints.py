"""Endpoints of the domains added after the foundation register themselves here."""

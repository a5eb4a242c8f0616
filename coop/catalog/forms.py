"""The catalog has no forms of its own: it is read-only for users."""

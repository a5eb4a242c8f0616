"""Pieces every domain shares: errors, quantities, money formatting, access checks."""

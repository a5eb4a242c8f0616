"""Development-only tools, outside the production package: the local Stripe sandbox
(localstripe) that `make run`, `make demo-season`, the tests and the benchmarks start, and the
development server. Nothing in coop/ imports this package (tests/test_layout.py checks)."""

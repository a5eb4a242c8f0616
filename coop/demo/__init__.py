"""Demo data, never needed in production: `flask seed-demo` (seed.py, with the pools' prices and
open pools from pools.py) and `flask demo-season` (season.py)."""

"""Treasury: reconciliation with Stripe and the bank, operating costs, the year-end close."""

"""Payouts: what each farmer is owed, payout batches per rail, bulk files, confirmations."""

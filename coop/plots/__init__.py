"""Plots: geometry, the EUDR declarations, versions and the farmers\x27 trace consent."""

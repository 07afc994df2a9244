"""Machinery every source shares: listing, ledger, quarantine, exactly-once writes, run records."""

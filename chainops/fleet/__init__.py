"""Fleet mode: one command for many databases, each with its own ledger and lock."""

"""The read-only ledger explorer served on 127.0.0.1."""

"""The migration folder: files, directives, SQL analysis, chain.lock, templates.

No database: everything here reads files or text.
"""

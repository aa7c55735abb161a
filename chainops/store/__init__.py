"""Everything that talks to PostgreSQL; the only importers of psycopg."""

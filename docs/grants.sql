-- Least privilege for a chainops database: the migrator owns the schema and the
-- ledger; the application may read and write its own tables and only read the
-- ledger; a read-only role (dashboards, CI) may run status and verify.
--
-- Run once per database, as its owner or a superuser, before the first migrate.
-- The three roles must already exist (CREATE ROLE ... LOGIN PASSWORD ...):
--
--   psql "$ADMIN_URL" -X -f docs/grants.sql -v migrator=app_owner -v app=app_user \
--        -v readonly=app_readonly -v ledger_schema=chainops
--
-- Then run every chainops command with CHAINOPS_LEDGER_SCHEMA=chainops (or
-- ledger_schema = "chainops" under [tool.chainops]), migrate as the migrator, and
-- give the application the app role. Tested by tests/reliability/test_security.py.
\set ON_ERROR_STOP on

-- Nobody but the migrator creates objects in public (PostgreSQL 15 already
-- revokes this from PUBLIC; older servers grant it).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"migrator";
GRANT USAGE ON SCHEMA public TO :"app", :"readonly";

-- The ledger lives in its own schema, owned by the migrator, so the grants below
-- for the application's tables never reach it. Ledger tables are readable (the
-- app's start-up check, status, verify) and writable by their owner alone.
CREATE SCHEMA IF NOT EXISTS :"ledger_schema" AUTHORIZATION :"migrator";
REVOKE ALL ON SCHEMA :"ledger_schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"ledger_schema" TO :"app", :"readonly";
GRANT SELECT ON ALL TABLES IN SCHEMA :"ledger_schema" TO :"app", :"readonly";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA :"ledger_schema"
    GRANT SELECT ON TABLES TO :"app", :"readonly";

-- Tables the migrations create: what an application needs, and no TRUNCATE or DDL.
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA public
    GRANT SELECT ON TABLES TO :"readonly";

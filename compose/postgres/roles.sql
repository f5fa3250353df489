-- The demo API's and the Postgres exporter's own roles, so that neither connects as the superuser.
-- Run by the postgres-roles service on every `lab up` (psql, as the superuser): it creates what is
-- missing and sets the passwords from .env, so that it also brings an older lab's data volume up to
-- date. Works on PostgreSQL 15 and later (\getenv; no CREATE on schema public for other roles).

\set ON_ERROR_STOP on
\getenv api_password POSTGRES_API_PASSWORD
\getenv exporter_password POSTGRES_EXPORTER_PASSWORD

SELECT 'CREATE ROLE lab_api' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab_api') \gexec
SELECT 'CREATE ROLE lab_exporter' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab_exporter') \gexec

-- The API: log in, connect to its database, and own one schema named after it, which comes first in
-- its search_path ("$user", public): its tables go there. No superuser, no CREATEDB, no CREATEROLE.
ALTER ROLE lab_api WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'api_password';
GRANT CONNECT, TEMPORARY ON DATABASE lab TO lab_api;
CREATE SCHEMA IF NOT EXISTS lab_api AUTHORIZATION lab_api;

-- The exporter: read the server's statistics (pg_monitor) and nothing else.
ALTER ROLE lab_exporter WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'exporter_password';
GRANT CONNECT ON DATABASE lab TO lab_exporter;
GRANT pg_monitor TO lab_exporter;

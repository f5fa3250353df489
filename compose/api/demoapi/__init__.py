"""Demo target API of Load Lab: a small catalog and order service on Postgres and Redis."""

"""The PostgreSQL store: many hosts share one queue. Needs the psycopg driver, imported only
when a PostgreSQL store is opened."""

from .store import PostgresStore

__all__ = ["PostgresStore"]

"""The PostgreSQL store: the Store in a PostgreSQL database, shared by any number of agents.

Above: the engine, the agent, the CLI and the server, through the Store protocol
(base.py); `open_store("postgresql://...")` opens one. Below: psycopg 3 and its
async connection pool, imported only when such a URL is used. The package owns:

- store.py: `PostgresStore` and `open_postgres`;
- queries.py: its SQL, one fenced statement per step transition;
- security.py: the security records (secrets, workflows, tokens, audit);
- schema.py: migrations (storage/sql/postgres/) under an advisory lock, and
  PostgreSQL's errors in Sire's words.
"""

from sire.storage.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from sire.storage.postgres.store import PostgresStore, open_postgres

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "open_postgres"]

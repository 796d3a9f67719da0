"""`python -m store migrate --database-url URL`: bring the schema up to date (what every instance does at start)
and check the database accepts writes, then exit: for releasing a migration once before starting the instances.
Exit code 0 when done, 3 (with what to fix) when the database is read-only, full or unreachable."""

from __future__ import annotations

import argparse
import asyncio
import sys

from store.db import open_store
from store.errors import StoreUnwritableError


async def migrate(database_url: str) -> None:
    store = await open_store(database_url)
    await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["migrate"])
    parser.add_argument("--database-url", required=True, help="as WATCHWORD_DATABASE_URL")
    args = parser.parse_args(argv)
    try:
        asyncio.run(migrate(args.database_url))
    except StoreUnwritableError as err:
        print(f"store: {err}", file=sys.stderr)
        return 3
    except ValueError as err:  # a malformed URL
        print(f"store: {err}", file=sys.stderr)
        return 2
    print("store: the schema is up to date and the database accepts writes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

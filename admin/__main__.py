"""The console's command line: `python -m admin COMMAND ...`.

    python -m admin sync [--tenant ID]    sync the protected users from Entra now (resumable; see admin/sync_cli.py)
"""

from __future__ import annotations

import sys

COMMANDS = {"sync": "admin.sync_cli"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    import importlib

    return int(importlib.import_module(COMMANDS[argv[0]]).main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m fastchat.server``: the same as ``fastchat serve``, without the client's imports."""

from __future__ import annotations

import argparse
import sys

from fastchat.server import config
from fastchat.server.runtime.supervisor import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastchat serve", description="Run the fastchat IRC server."
    )
    config.add_arguments(parser)
    return serve(config.from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

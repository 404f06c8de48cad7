"""`python -m console`: serve the console until SIGTERM/SIGINT.
`python -m console hash-password`: print a password hash for CONSOLE_USERS."""

from __future__ import annotations

import getpass
import sys

from payplane.runtime import run_service

from .bootstrap import start
from .passwords import hash_password
from .settings import ConsoleSettings


def hash_password_command() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["hash-password"]:
        raise SystemExit(hash_password_command())
    if args:
        print("usage: python -m console [hash-password]", file=sys.stderr)
        raise SystemExit(2)
    run_service("console", ConsoleSettings, start)


if __name__ == "__main__":
    main()

"""The ``spamclf`` program: the console script and ``python -m spamclf``.

A mail filter that goes through the daemon (``predict --server URL -``, ``learn --server URL ...``)
is a fresh process per message, so its start-up is its cost: such command lines are handled by
``spamclf.serving.client`` with the standard library alone, before Click, NumPy or any model code
is imported. Every other command line goes to the Click program, ``spamclf.cli``.
"""

import sys


def main() -> None:
    from .serving.client import fast_path

    code = fast_path(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli import entry_point

    entry_point()


if __name__ == "__main__":
    main()

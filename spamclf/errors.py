"""Typed errors: every failure a user can cause is one of these, never a traceback.

Each carries the process exit status the CLI uses for it, so the Python API and
the command line agree on what went wrong.
"""


class SpamclfError(ValueError):
    """Base class. Exit status 1: bad input, bad option, bad data."""

    exit_code = 1


class ConfigError(SpamclfError):
    """An unknown config key, a value of the wrong type, an unreadable config file."""


class DataError(SpamclfError):
    """Input data that cannot be used: missing, empty, unlabelled, a single class."""


class BundleError(SpamclfError):
    """A models directory that is missing, incomplete, tampered with or incompatible.

    Exit status 3, as bogofilter uses for errors: a mail pipeline must be able
    to tell "the filter is broken" from "this message is ham".
    """

    exit_code = 3


class TrainingError(SpamclfError):
    """Training that went wrong on good input: the loss became NaN or infinite (a learning rate too high, say)."""

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


class UsageError(SpamclfError):
    """A call that cannot work as given, such as stdin ('-') named twice as an input.

    Exit status 2, as Click's usage errors: the library's counterpart of them, for the Python API too.
    """

    exit_code = 2


class BundleError(SpamclfError):
    """A models directory that is missing, incomplete, tampered with or incompatible.

    Exit status 3, as bogofilter uses for errors: a mail pipeline must be able
    to tell "the filter is broken" from "this message is ham".
    """

    exit_code = 3


class OutputError(SpamclfError):
    """An output that could not be written: a full disk, a read-only folder, a file size limit.

    Exit status 1, as for the other failures of a batch command; the files that were there
    before are left as they were (see ``spamclf.writing``).
    """


class TrainingError(SpamclfError):
    """Training that cannot give a usable model: its loss or weights stopped being finite numbers (a
    learning rate too high, say)."""


# Filter mode's exit statuses, as bogofilter's: the verdict, or 3 for an error (the message was passed
# through unchanged). Here in the base stage so that the daemon's client (spamclf.serving.client) reads
# them without loading the commands stage.
EXIT_SPAM, EXIT_HAM, EXIT_UNSURE, EXIT_ERROR = 0, 1, 2, 3
EXIT_BY_LABEL = {"spam": EXIT_SPAM, "ham": EXIT_HAM, "unsure": EXIT_UNSURE}

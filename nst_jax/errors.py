"""The one exception type for errors a user can cause (bad files, bad options, missing weights).

The CLI prints its message as a single line on stderr and exits non-zero; the Python API lets it
propagate.  Messages say what went wrong and what to do about it.
"""


class NSTError(Exception):
    """A user-facing error with a one-line, actionable message."""

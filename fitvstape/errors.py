"""The one exception type for bad input.

Library code raises :class:`InputError` with a message that names the flag, config key or file
and the bad value. The CLI turns it into a one- or two-line message and exit status 2.
"""


class InputError(ValueError):
    """Bad user input: a flag, a config key, a file. Exit status 2, no traceback."""


class DistributedError(RuntimeError):
    """A distributed run failed: a worker died, timed out or could not start. Exit status 1."""

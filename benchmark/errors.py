"""The one error type the command line turns into a one-line message and a non-zero exit."""


class TedbenchError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The message is one line and names the file (and line) concerned where there is one.
    """

"""The one exception type the command line turns into a one-line message and exit code 2."""


class AdaRankError(Exception):
    """A problem with the user's input or environment, stated with its fix.

    Anything raised as ``AdaRankError`` is the user's to fix (a path, a pattern, a budget); the CLI
    prints ``adarank: error: <message>`` and exits with code 2 instead of showing a traceback.
    Bugs stay ordinary exceptions so that they keep their traceback.
    """

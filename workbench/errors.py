"""The one base class of every error a user can cause and fix.

Each module raises its own subclass (a store, import, run or labeling error), with a message of one line
that says what went wrong and where; the CLI catches this class once and exits 2, the server shows the
message. Anything else is a bug and keeps its traceback. Imports nothing, so every layer may use it.
"""


class WorkbenchError(Exception):
    """A problem the user can fix; the message says what, where and, where it helps, what to do."""

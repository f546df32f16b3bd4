"""The one base class of every error a user can cause and fix, and the helpers that keep its message short.

Each module raises its own subclass (a store, import, run or labeling error), with a message of one line
that says what went wrong and where; the CLI catches this class once and exits 2, the server shows the
message. Anything else is a bug and keeps its traceback. Imports nothing, so every layer may use it.

A message that quotes what the user sent quotes it through `excerpt`: a 10 MB task name or a file's first
line must not travel whole into a reply, a terminal or a log.
"""

EXCERPT_CHARS = 80
"""The most characters of user input an error quotes: enough to recognize it, too few to leak a file."""


class WorkbenchError(Exception):
    """A problem the user can fix; the message says what, where and, where it helps, what to do."""


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """`value` quoted for a message: at most `limit` characters, escaped (newlines, control characters and
    lone surrogates as escapes, so the message stays one printable line), with the full length when cut."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value[:limit])
        more = len(value) > limit
        return repr(data) + (f"... ({len(value):,} bytes)" if more else "")
    if not isinstance(value, str):  # a number, a list: its repr, cut (and escaped by repr itself)
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value):,} characters)"


def unpaired_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in `text` (what a JSON "\\ud800" decodes to), or None. Such text
    cannot be stored or encoded as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(value: object, what: str, error: type[WorkbenchError] = WorkbenchError) -> str:
    """`value` when it is a string that UTF-8 can hold; else `error` naming `what`: a number or a list sent
    where text belongs is refused, never stored as its Python repr."""
    if not isinstance(value, str):
        kind = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object",
                type(None): "nothing"}.get(type(value), type(value).__name__)
        raise error(f"{what} must be text, got {kind}")
    at = unpaired_surrogate(value)
    if at is not None:
        raise error(f"{what}: character {at + 1} is an unpaired surrogate ({value[at]!r}), which is not valid "
                    "Unicode; send the text as UTF-8")
    return value

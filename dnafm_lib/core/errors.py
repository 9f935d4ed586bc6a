"""The one exception type the CLI turns into a clean message (no traceback)."""


class DnafmError(Exception):
    """Bad input or a failed external step, with a message naming the thing at fault and where."""

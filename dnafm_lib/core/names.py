"""Names that become part of a file path (or of a one-word field of a text format).

A genome id, an assembly name or a model name ends up as a folder (``hub/{assembly}/``), a file
name or a word of a UCSC hub file: ``../x`` or ``a/b`` would write outside the output folder or
nest folders, and a space or newline would break the file format. So such names are checked
against one pattern (the workflow's ``{genome}`` wildcard uses the same) and refused in one line.
"""

from __future__ import annotations

import re

from dnafm_lib.core.errors import DnafmError

#: Letters, digits, '.', '_' and '-', starting with a letter or digit (so never '.', '..' or hidden).
PATH_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_PATH_NAME_RE = re.compile(rf"^{PATH_NAME_PATTERN}$")


class PathNameError(DnafmError):
    """A name that cannot be used in a path."""


def check_path_name(value: str, what: str) -> str:
    """Return ``value`` if it matches PATH_NAME_PATTERN, else raise one error naming ``what``."""
    if not isinstance(value, str) or not _PATH_NAME_RE.fullmatch(value):
        raise PathNameError(
            f"{what} {value!r}: not a valid name; use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit (it becomes part of a file path)"
        )
    return value

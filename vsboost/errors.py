"""The one base class of errors meant for people.

A :class:`UserError` says, in one line, which file, field or option is wrong, what was expected,
what was found and how to fix it. The ``bench`` and ``python -m vsboost`` command lines print it
without a traceback and exit 2; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem a person must fix; the message is one line."""

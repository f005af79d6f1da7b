"""Logging filters: keep credentials that travel in URL paths out of log lines.

The public survey page (``/s/<token>/``) and the unsubscribe link (``/u/<signed>/``) carry their
credential in the path. Django's ``django.request``/``django.server`` records and gunicorn's access log
would write it verbatim; :class:`MaskPathTokens` replaces the segment with ``***`` in the record's
message and in every string argument (gunicorn passes its access-log atoms as a dict argument).
"""

from __future__ import annotations

import logging
import re
from typing import Any

# A path segment right after /s/ or /u/ (anywhere in the string: request lines, full URLs, paths).
TOKEN_PATH = re.compile(r"(/[su]/)[^/\s?#\"']+")
MASK = r"\1***"


def mask_tokens(value: Any) -> Any:
    """``value`` with /s/<token> and /u/<token> segments masked (strings only; other types as they are)."""
    if isinstance(value, str):
        return TOKEN_PATH.sub(MASK, value)
    if isinstance(value, bytes):
        return TOKEN_PATH.sub(MASK, value.decode("utf-8", "replace")).encode()
    return value


class MaskPathTokens(logging.Filter):
    """Masks survey and unsubscribe tokens in a record's ``msg`` and ``args``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_tokens(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: mask_tokens(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(mask_tokens(value) for value in record.args)
        return True

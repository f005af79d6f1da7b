"""Logging filters: keep credentials out of log lines (docs/security.md, "No secret in logs").

Two kinds of secret can reach a log record:

* **Credentials in URL paths.** The public survey page (``/s/<token>/``), the unsubscribe link
  (``/u/<signed>/``) and invitation links (``/invitations/<token>/``) carry their credential in the path.
  Django's ``django.request``/``django.server`` records and gunicorn's access log would write it verbatim.
* **Keys and passwords in text.** An API key (``rtn_…``), a write key (``rwk_…``), an ``Authorization``
  header value (``Bearer …``, ``Basic …``) or a ``password=…`` pair that a message, an argument or an
  exception's text happens to carry (a bug that puts a header in an error message must not leak it).

:class:`MaskPathTokens` replaces each with ``***`` in the record's message, every string argument (gunicorn
passes its access-log atoms as a dict argument) and the exception text, which it renders itself so that the
formatter prints the masked copy. It never drops a record. It is on the console handler (every logger) and on
Django's request loggers (settings.LOGGING) and on gunicorn's access log (gunicorn_conf.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

# A path segment right after /s/, /u/ or /invitations/ (anywhere in the string: request lines, URLs, paths).
TOKEN_PATH = re.compile(r"(/(?:s|u|invitations)/)[^/\s?#\"']+")
# Retain's key formats (cs_platform.organizations.ApiKey/WriteKey: prefix + 43 URL-safe characters), the
# credentials of an Authorization header, and password-like fields in query strings, forms or JSON text.
SECRETS = re.compile(
    r"\b(rtn_|rwk_)[A-Za-z0-9_-]{8,}"
    r"|\b((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|((?i:password|passwd|secret|token|api_key|write_key|writekey)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
)
MASK = r"\1***"


def _mask_secret(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or match.group(3)) + "***"


def mask_tokens(value: Any) -> Any:
    """``value`` with path tokens, keys, Authorization credentials and passwords masked (strings and bytes;
    other types as they are)."""
    if isinstance(value, str):
        return SECRETS.sub(_mask_secret, TOKEN_PATH.sub(MASK, value))
    if isinstance(value, bytes):
        return mask_tokens(value.decode("utf-8", "replace")).encode()
    return value


_EXCEPTION_FORMATTER = logging.Formatter()


class MaskPathTokens(logging.Filter):
    """Masks credentials in a record's ``msg``, ``args`` and exception text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_tokens(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: mask_tokens(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(mask_tokens(value) for value in record.args)
        if record.exc_info and not record.exc_text:
            # The formatter prints exc_text when it is set: render the traceback here, masked.
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_tokens(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_tokens(record.stack_info)
        return True

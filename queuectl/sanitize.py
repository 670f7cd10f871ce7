"""Make untrusted text (job output, commands, ids, errors) inert for a terminal.

Escape and control sequences (CSI, OSC, DCS, C1) and bidi overrides are shown as visible
placeholders instead of being interpreted; invalid UTF-8 becomes U+FFFD.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Control characters except tab and newline, DEL, C1 controls, and bidi formatting characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "]")


def _show(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code == 0x1B:
        return "^["
    if code < 0x20:
        return "^" + chr(code + 64)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def clean(text: str, *, keep_newlines: bool = True) -> str:
    """Text with every control character made visible; tabs (and newlines if kept) stay."""
    if keep_newlines:
        text = text.replace("\r\n", "\n")
    return (_UNSAFE if keep_newlines else _UNSAFE_LINE).sub(_show, text)


def clean_bytes(data: bytes, *, keep_newlines: bool = True) -> str:
    return clean(data.decode("utf-8", errors="replace"), keep_newlines=keep_newlines)


def one_line(text: str | None, width: int | None = None) -> str:
    """A single display line: controls visible, newlines shown as ⏎, clipped to width."""
    if text is None:
        return ""
    line = clean(text.replace("\r\n", "\n").replace("\n", "⏎"), keep_newlines=False)
    if width is not None and len(line) > width:
        line = line[: max(0, width - 1)] + "…"
    return line

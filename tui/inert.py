"""Ids, commands, errors and output are data: the console shows them, Textual never parses them.

Textual reads a plain `str` as markup almost everywhere (toasts, `Static`, `Label`, `Button`,
border titles, the command palette), so a job id like `[/x]` would crash a toast and
`[@click=app.quit]x[/]` would become a clickable action. One rule, kept here: a widget is given
Rich `Text` (which never parses markup), built by `plain`; a toast, whose API takes only a
`str`, is shown with markup off, which `QueueApp.notify` enforces for every notification.
Strings the console passes as markup are its own constants (the palette's titles and help).
"""

from __future__ import annotations

from rich.text import Text


def plain(value: object, style: str = "") -> Text:
    """`value` as literal text for a widget, optionally in one style."""
    return Text(str(value), style=style)

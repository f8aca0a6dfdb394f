"""The one place where terminal output meets external text.

Host names, file names, package versions, waiver reasons, error messages from hosts:
anything vcops did not write itself may contain ``[...]``. The consoles of
:class:`vcops.cli.app.App` therefore never parse markup: a plain string is printed as
it is, in tables too. Colour and weight come only from :func:`styled`, whose template
is vcops's own and whose values are escaped::

    console.print(styled("[red]{}[/]: {}", host.name, reason))

so ``[/x]`` from a host prints as ``[/x]`` (it neither raises rich's MarkupError nor
disappears like ``[smtp]`` would).
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text


def styled(template: str, *values: object) -> Text:
    """``template`` (vcops's own markup) with every value escaped and filled in by ``{}``."""
    return Text.from_markup(template.format(*(escape(str(v)) for v in values)))


def plain(value: object) -> Text:
    """A value printed exactly as it is, whatever a console's markup setting."""
    return Text(str(value))

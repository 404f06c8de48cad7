"""The console's screens, in the order the navigation lists them.

Each module holds one screen: a `PAGE` (nav title, the capability that shows it, routes)
and its templates. The alert queue joins as one more module listed here once the ledger's
AlertService exists.
"""

from __future__ import annotations

from ..web import Page
from . import discrepancies, payments, reviews

__all__ = ["PAGES"]

PAGES: tuple[Page, ...] = (reviews.PAGE, discrepancies.PAGE, payments.PAGE)

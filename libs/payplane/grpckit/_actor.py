from __future__ import annotations

import re
from typing import Any

from ._pipeline import current_caller

__all__ = ["ACTING_USER", "current_actor"]

# Metadata a caller acting for a person (the console) sends with the person's name.
ACTING_USER = "acting-user"
# Short enough that "caller:user" fits the services' 64-character actor columns.
_USER = re.compile(r"^[A-Za-z0-9._@+-]{1,40}$")


def current_actor(context: Any) -> str:
    """Who did it, for an audit trail: the authenticated caller, followed by the person it
    acts for when it names one (`acting-user` metadata): "reviewer:alice".

    The person's name is the caller's statement, recorded as such; authorisation stays with
    the caller's credential. A malformed name is ignored rather than stored.
    """
    caller = current_caller() or ""
    for key, value in context.invocation_metadata() or ():
        if key == ACTING_USER and isinstance(value, str) and _USER.match(value):
            return f"{caller}:{value}"
    return caller

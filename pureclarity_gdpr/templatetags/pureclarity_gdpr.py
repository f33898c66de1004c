"""Template filters: ``{% load pureclarity_gdpr %}``.

``{% if request.user.email|pureclarity_forgotten %}`` leaves out tracking events
for someone PureClarity has already forgotten; ``value|pureclarity_forgotten:"uk"``
asks about one store view.
"""

from __future__ import annotations

from django import template

from ..api import is_forgotten

register = template.Library()


@register.filter
def pureclarity_forgotten(identifier: object, store_view: str | None = None) -> bool:
    if identifier is None:
        return False
    return is_forgotten(str(identifier), store_view)

"""Signals this app sends, for shops that want to act on an erasure's outcome.

Both are sent with ``sender=ForgetRequest`` and ``request``, the forget request as
it now stands (its plain identifier already wiped once acknowledged), after the
outcome is committed to the database::

    from pureclarity_gdpr.signals import forget_failed

    @receiver(forget_failed)
    def tell_the_dpo(sender, request, **kwargs):
        ...
"""

from __future__ import annotations

from django.dispatch import Signal

from .actor import acting_as

# PureClarity acknowledged a forget request with a 200.
forget_acknowledged = Signal()

# A forget request failed for good: it will not be tried again without a person.
forget_failed = Signal()

__all__ = ["acting_as", "forget_acknowledged", "forget_failed"]

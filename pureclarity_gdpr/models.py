"""The forget request: the outbox and the audit record of every erasure sent."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .identifiers import MAX_LENGTH

# Long enough for any username, an email address used as one included.
REQUESTER_LENGTH = 254


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    NEEDS_ATTENTION = "needs_attention", _("Needs attention")
    CANCELLED = "cancelled", _("Cancelled")


class Source(models.TextChoices):
    USER_DELETION = "user_deletion", _("User deletion")
    ADMIN = "admin", _("Admin")
    COMMAND = "command", _("Command")
    API = "api", _("Python API")


# Statuses in which a request still has to reach PureClarity; at most one such
# request may exist per identifier and store view.
OPEN_STATUSES = (Status.PENDING, Status.SENDING, Status.FAILED)


class ForgetRequest(models.Model):
    """One identifier to be forgotten in one PureClarity store view."""

    identifier = models.CharField(
        _("identifier"),
        max_length=MAX_LENGTH,
        blank=True,
        help_text=_("Kept only until PureClarity acknowledges the request."),
    )
    identifier_hash = models.CharField(
        _("identifier hash"), max_length=64, blank=True, db_index=True
    )
    identifier_hint = models.CharField(_("identifier"), max_length=64, blank=True)
    store_view = models.CharField(_("store view"), max_length=64)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=Status.choices,
        default=Status.PENDING,
        db_index=True,
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    # The username of whoever asked, as it was then: the record outlives their
    # account, and a text column costs a user's deletion no query.
    requested_by = models.CharField(
        _("requested by"), max_length=REQUESTER_LENGTH, blank=True
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    # "<store view>:<identifier hash>" while the request is open, else NULL: a unique
    # column that every database enforces, where a partial unique index would not
    # be available on MariaDB.
    open_key = models.CharField(
        max_length=140, null=True, blank=True, unique=True, editable=False
    )

    class Meta:
        verbose_name = _("forget request")
        verbose_name_plural = _("forget requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="pcgdpr_request_due_idx"
            ),
            models.Index(
                fields=["identifier_hash", "store_view"], name="pcgdpr_request_hash_idx"
            ),
        ]
        permissions = [
            ("forget_in_pureclarity", _("Can forget people in PureClarity")),
        ]

    def __str__(self) -> str:
        return f"{self.identifier_hint or '?'} in {self.store_view} ({self.status})"

    @staticmethod
    def make_open_key(store_view: str, identifier_hash: str) -> str:
        return f"{store_view}:{identifier_hash}"


class ForgetAttempt(models.Model):
    """One HTTP call made for a forget request: the evidence of delivery."""

    request = models.ForeignKey(
        ForgetRequest,
        verbose_name=_("forget request"),
        on_delete=models.CASCADE,
        related_name="attempt_log",
    )
    started_at = models.DateTimeField(_("started"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    status_code = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True
    )
    succeeded = models.BooleanField(_("succeeded"))
    error = models.TextField(_("error"), blank=True)
    excerpt = models.CharField(_("answer excerpt"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.status_code or '-'}"


class StoreViewPause(models.Model):
    """A store view whose deliveries wait because PureClarity refused its keys.

    Sending request after request with keys PureClarity refuses helps nobody, so
    the first 401 or 403 pauses the store view until a person resumes it or the
    pause runs out and one request tries again.
    """

    store_view = models.CharField(_("store view"), max_length=64, unique=True)
    reason = models.TextField(_("reason"))
    paused_at = models.DateTimeField(_("paused"), default=timezone.now)
    paused_until = models.DateTimeField(_("paused until"))

    class Meta:
        verbose_name = _("paused store view")
        verbose_name_plural = _("paused store views")

    def __str__(self) -> str:
        return self.store_view

"""The form for forgetting identifiers that belong to no account."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..conf import conf
from ..exceptions import InvalidIdentifier
from ..identifiers import clean


class ForgetIdentifiersForm(forms.Form):
    identifiers = forms.CharField(
        label=_("Identifiers"),
        # Kept as typed, so the line numbers in errors match what the person sees.
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "spellcheck": "false"}),
        help_text=_(
            "One per line, exactly as your site sends it to PureClarity: a customer "
            "id, or the email address of a guest order."
        ),
    )
    store_views = forms.MultipleChoiceField(
        label=_("Store views"), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = conf.store_view_names
        store_views = cast(forms.MultipleChoiceField, self.fields["store_views"])
        store_views.choices = [(name, name) for name in names]
        store_views.initial = names

    def clean_identifiers(self) -> list[str]:
        found: list[str] = []
        errors: list[ValidationError] = []
        for number, line in enumerate(self.cleaned_data["identifiers"].splitlines(), 1):
            if not line.strip():
                continue
            try:
                identifier = clean(line)
            except InvalidIdentifier as err:
                errors.append(
                    ValidationError(
                        _("Line %(number)d: %(error)s"),
                        code="invalid",
                        params={"number": number, "error": str(err)},
                    )
                )
                continue
            found.append(identifier)

        if errors:
            raise ValidationError(errors)
        if not found:
            raise ValidationError(_("Enter at least one identifier."), code="required")
        return list(dict.fromkeys(found))

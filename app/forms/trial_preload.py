"""Imported by the trial prints' fork server only (``app.forms.trial``): warms the renderer there."""

from app.forms.trial import warm

warm()

"""Imported by the trial prints' fork server only (``app.forms.trial``): warms the renderer there."""

import logging

from app.forms.trial import warm

try:
    warm()
except Exception:  # a cold start for each trial is slower, not wrong: the fork server must start
    logging.getLogger(__name__).exception("the trial print's renderer could not be warmed")

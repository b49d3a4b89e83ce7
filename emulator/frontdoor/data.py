"""Routes of this concept: filled in by its own change."""

from flask import Blueprint

from emulator.frontdoor import resources

blueprint = Blueprint("data", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

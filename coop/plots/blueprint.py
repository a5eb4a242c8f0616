"""The plots domain's HTML blueprint: the manager's pages (views.py), the farmer's own pages
and the capture from the field (field_views.py)."""
from flask import Blueprint

bp = Blueprint("plots", __name__)

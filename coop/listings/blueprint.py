"""The listings blueprint: the farmer's pages (views.py) and what works offline (offline.py)
both add routes to it; create_app imports both before registering it."""
from flask import Blueprint

bp = Blueprint("listings", __name__)

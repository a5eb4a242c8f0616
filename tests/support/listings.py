"""Helpers of listing tests that are not fixtures."""
from __future__ import annotations


def ensure_collection_point(farmer, coop_id, name):
    """The farmer's coop (the one given, or their only one) has a collection point `name`."""
    from coop.cooperatives import services as coop_services
    from coop.listings.services import farmer_coop_for
    coop = coop_services.get_coop(farmer_coop_for(farmer, coop_id))
    if coop_services.collection_point_named(coop.id, name) is None:
        coop_services.add_collection_point(coop, name=name)
    return coop

"""The pools domain's interface: what other domains, the views, the API and the commands
call. The work lives in core.py (opening and reading pools, supply, the pool lock),
orders.py (place, change, withdraw), resolver.py (settling unknown card holds) and
closing.py (decide, allocate, settle, close-due, cancel)."""
from .core import (  # noqa: F401
    DELIVERY_DAYS, MAX_OPEN_DAYS, buyer_orders, buyer_orders_page, buyer_pool_orders,
    current_price, delivery_due,
    farmer_allocations, free_supply_g, get_pool, lock_pool, open_pool, own_order,
    parse_closes_at, pool_allocations, pool_orders, pool_orders_page, pool_totals, pools,
    pools_page, record_refunded,
    register_supply_reservation, reserved_g)
from .orders import (  # noqa: F401
    OrderPreview, apply_payment_intent_event, change_order, place_order,
    preview_change, preview_order, preview_withdraw, withdraw_order)
from .resolver import (  # noqa: F401
    RESOLVED_FAILURE, Resolution, resolve_holds, resolve_order, settle_after)
from .closing import (  # noqa: F401
    BuyerEffect, ClosePreview, FarmerEffect, cancel_pool, close_due, close_pool, preview_cancel,
    preview_close)
from .settlement import progress as settlement_progress  # noqa: F401,E402
from .terms import TERMS as DELIVERY_TERMS, change_terms, parse_terms  # noqa: F401,E402

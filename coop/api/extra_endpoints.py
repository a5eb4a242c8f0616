"""Endpoints of the domains added after the foundation register themselves here."""
from ..pools import api as _pools_api  # noqa: F401
from ..ledger import api as _ledger_api  # noqa: F401,E402
from ..payouts import api as _payouts_api  # noqa: F401,E402
from ..intake import api as _intake_api  # noqa: F401,E402

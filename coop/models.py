"""Imports every domain's models so SQLAlchemy's metadata (and Alembic) sees all tables."""
from .auth.models import ApiToken, Buyer, BuyerInvitation, User  # noqa: F401
from .catalog.models import Crop, Grade  # noqa: F401
from .cooperatives.models import (Cooperative, FarmerProfile, FinanceSettings,  # noqa: F401
                                  Membership, Plot, CoopDocument, Invitation)
from .listings.models import Listing, ListingPhoto, ListingPlot  # noqa: F401
from .pricing.models import PriceVersion  # noqa: F401
from .pools.models import Allocation, Order, Pool  # noqa: F401
from .payments.models import StripeEvent  # noqa: F401
from .ledger import models as _ledger_models  # noqa: F401  (accounts, entries, postings)
from .audit.models import AuditEvent  # noqa: F401
from .common.refcache import reference_versions  # noqa: F401  (coop/common/refcache.py)
from .staff.models import PlatformStaff  # noqa: F401,E402
from .payouts.models import PayoutBatch, PayoutExclusion, PayoutLine  # noqa: F401,E402
from .intake.models import Intake, Refund  # noqa: F401,E402
from .shares.models import ShareAccount, ShareMovement  # noqa: F401,E402
from .treasury.models import BankStatementLine, StripeBalanceTxn, YearEndClose  # noqa: F401,E402
from .jobs.models import Job  # noqa: F401,E402
from .messages.models import Message, OptOut  # noqa: F401,E402
from .plots.models import PlotDocument, PlotSettings, PlotVersion, TraceConsent  # noqa: F401,E402
from .lots.models import Lot, LotSequence, LotSource, LotSourcePlot  # noqa: F401,E402
from .lots.eudr_models import DdsReference, EudrPack  # noqa: F401,E402
from .lots.dispatch_models import LotEvent  # noqa: F401,E402
from .invoices.models import (BuyerBilling, DocumentCounter, Invoice,  # noqa: F401,E402
                              InvoiceAcceptance, InvoiceSettings)
from .fx.models import ExchangeRate  # noqa: F401,E402

"""Labels of the auth domain's codes."""
from flask_babel import lazy_gettext as _l

CONTACT_CHANNELS = {"email": _l("e-mail"), "sms": _l("SMS"), "whatsapp": _l("WhatsApp")}

# A user's role in their buyer organisation (auth.organisations.BUYER_ROLES).
BUYER_ROLES = {"admin": _l("admin"), "purchaser": _l("purchaser"), "accounts": _l("accounts")}

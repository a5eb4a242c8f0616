"""Labels of the auth domain's codes."""
from flask_babel import lazy_gettext as _l

CONTACT_CHANNELS = {"email": _l("e-mail"), "sms": _l("SMS"), "whatsapp": _l("WhatsApp")}

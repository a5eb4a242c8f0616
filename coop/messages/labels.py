"""Labels of the messages domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

MESSAGE_STATUS = {"queued": _l("waiting to be sent"), "sent": _l("sent"),
                  "delivered": _l("delivered"), "failed": _l("not delivered")}
CHANNELS = {"email": _l("e-mail"), "sms": _l("SMS"), "whatsapp": _l("WhatsApp")}
TOPICS = {"account": _l("your account"), "money": _l("your money and deliveries"),
          "updates": _l("updates"), "reminders": _l("reminders"),
          "news": _l("news and new pools")}

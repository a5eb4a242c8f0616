"""Telling people what happened: a message row per event, recipient and channel, rendered in
the recipient's language, sent by e-mail, SMS or WhatsApp from the job queue."""

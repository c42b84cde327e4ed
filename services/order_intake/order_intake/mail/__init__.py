"""The failed-import mail: queued with a not imported revision (storage/mails.py), sent here."""

from order_intake.mail.sender import ImportMailSender

__all__ = ["ImportMailSender"]

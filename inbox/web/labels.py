"""The English labels that ``|humanize`` shows for stored values (statuses, priorities, channels,
intents, order and return states), listed so that ``make i18n-extract`` finds them; the filter
translates the humanized value at render time, in the gettext context "label" (an unlisted value
is shown humanized, in English)."""

from __future__ import annotations

from inbox.web.i18n import NC_

__all__ = ["LABELS"]

LABELS: tuple[str, ...] = (
    # conversation status
    NC_("label", "Open"), NC_("label", "Pending"), NC_("label", "Snoozed"), NC_("label", "Resolved"),
    # priority
    NC_("label", "Low"), NC_("label", "Normal"), NC_("label", "High"), NC_("label", "Urgent"),
    # channel
    NC_("label", "Webchat"), NC_("label", "Telegram"), NC_("label", "Slack"), NC_("label", "Terminal"),
    # agent role
    NC_("label", "Admin"), NC_("label", "Agent"),
    # payment
    NC_("label", "Authorized"), NC_("label", "Partially paid"), NC_("label", "Paid"), NC_("label", "Partially refunded"), NC_("label", "Refunded"), NC_("label", "Voided"),
    # fulfilment
    NC_("label", "Unfulfilled"), NC_("label", "Partial"), NC_("label", "Fulfilled"), NC_("label", "Restocked"),
    # shipment
    NC_("label", "Info received"), NC_("label", "In transit"), NC_("label", "Out for delivery"), NC_("label", "Failed attempt"), NC_("label", "Available for pickup"), NC_("label", "Delivered"), NC_("label", "Exception"), NC_("label", "Expired"),
    # return
    NC_("label", "Requested"), NC_("label", "Approved"), NC_("label", "Label issued"), NC_("label", "Received"), NC_("label", "Exchanged"), NC_("label", "Credited"), NC_("label", "Rejected"), NC_("label", "Cancelled"),
    # resolution
    NC_("label", "Refund"), NC_("label", "Store credit"), NC_("label", "Exchange"),
    # return method
    NC_("label", "Mail"), NC_("label", "Dropoff"), NC_("label", "In store"),
    # return reason
    NC_("label", "Too small"), NC_("label", "Too large"), NC_("label", "Damaged"), NC_("label", "Defective"), NC_("label", "Not as described"), NC_("label", "Wrong item"), NC_("label", "Changed mind"), NC_("label", "Other"),
    # item condition
    NC_("label", "Unopened"), NC_("label", "Like new"), NC_("label", "Used"),
    # intents the bot recognises
    NC_("label", "Track order"), NC_("label", "Start return"), NC_("label", "Refund status"), NC_("label", "Return policy"), NC_("label", "Cancel order"), NC_("label", "Change address"), NC_("label", "Shipping info"), NC_("label", "Human agent"), NC_("label", "Complaint"), NC_("label", "Payment issue"), NC_("label", "Invoice"), NC_("label", "Greeting"), NC_("label", "Thanks"), NC_("label", "Goodbye"), NC_("label", "Unknown"),
)

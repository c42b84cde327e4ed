"""CommerceInterface's names, formats and Groupon's approved courier codes, as tables."""

from __future__ import annotations

CHANNEL_NAME = "groupon"
DEFAULT_BASE_URL = "https://scm.commerceinterface.com/api/v4/"
DEFAULT_CURRENCY = "USD"

MAX_ITEMS_PER_PAGE = 250  # get_orders' page size (line items), fixed by CommerceInterface
MARK_EXPORTED_CHUNK = 100  # line ids per mark_exported call: small forms, a failure costs little
# Passes over get_orders' pages before a listing that keeps shifting under us is given up on
# (until the next poll): lines marked exported meanwhile move later lines to earlier pages.
MAX_LISTING_PASSES = 3

# `date` as get_orders writes it, e.g. "08/10/2021 07:40PM UTC"; the filters take 24-hour time.
OUTPUT_DATE_PATTERN = r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2})(AM|PM) UTC$"
FILTER_DATE_FORMAT = "%m/%d/%Y %H:%M"

# The names a line's extra values carry on the canonical order (LineOption.name).
OPTION_GROUPON_SKU = "groupon_sku"
OPTION_FULFILLMENT_LINE = "fulfillment_lineitem_id"
OPTION_PO_NUMBER = "po_number"

# Words in a `success: false` reason that mean the supplier id or token was refused.
AUTH_REASON_WORDS = ("token", "supplier_id", "supplier id", "authenticat", "unauthori", "access denied")
# CommerceInterface keeps uploaded tracking; repeating an identical upload is answered with a
# reason holding these words (the simulator's wording: "Tracking already uploaded for ...").
ALREADY_UPLOADED_WORDS = "already uploaded"

# Groupon's approved courier list as of July 2018 (the Groupon-to-Mintsoft integration guide):
# (code, the other accepted spelling, the courier's name). The code is what we send.
APPROVED_CARRIERS: tuple[tuple[str, str, str], ...] = (
    ("4SL", "4sl", "4 Square Logistics"),
    ("APC", "apc", "APC Overnight"),
    ("ASDUK", "asduk", "ASENDIA UK"),
    ("APT", "apt", "An Post"),
    ("AXL", "axl", "Arrow XL"),
    ("ASDUT", "asdut", "Asendia Untracked"),
    ("BCE", "bce", "B2C Europe"),
    ("BCEUT", "bceut", "B2C Europe untracked"),
    ("BTI", "bti", "BRT Bartolini"),
    ("BULT", "bult", "Bulky - tracked"),
    ("CSO", "cso", "Colissimo"),
    ("COR", "cor", "Correos de Espana"),
    ("DHL", "dhl", "DHL"),
    ("DHLG", "dhlg", "DHL Germany"),
    ("DHLNL", "dhlnl", "DHL Netherlands"),
    ("DPDFR", "dpdfr", "DPD France"),
    ("DPDIE", "dpdie", "DPD Ireland"),
    ("DPDUK", "dpduk", "DPD UK"),
    ("NTF", "ntf", "DX Freight"),
    ("DCH", "dch", "Dachser"),
    ("DEP", "dep", "Deutsche Post"),
    ("ENVIALIA", "Envialia", "Envialia"),
    ("ERD", "erd", "Eurodis"),
    ("FTWY", "ftwy", "Fastway"),
    ("FEDEX", "fedex", "FedEx Global"),
    ("GLS", "gls", "GLS"),
    ("HMS", "hms", "Hermes"),
    ("IMXP", "imxp", "IMX Postal"),
    ("IKE", "ike", "Interlink Express"),
    ("POSTIUT", "postiut", "Itella Posti untracked (Finnish Post untracked)"),
    ("LPCUT", "lpcut", "La Post untracked"),
    ("LPC", "lpc", "La Poste Suivi Courrier"),
    ("NTL", "ntl", "Nightline"),
    ("NTK", "ntk", "No Tracking"),
    ("PLW", "plw", "Palletways"),
    ("PLF", "plf", "Parcel Force"),
    ("PNLUT", "pnlut", "Post NL untracked"),
    ("POSTNL", "postnl", "PostNL"),
    ("RED", "red", "Redur"),
    ("RYM", "rym", "Royal Mail Tracked"),
    ("RMUT", "rmut", "Royal Mail Untracked"),
    ("SAIL", "sail", "Sailpost"),
    ("SEUR", "seur", "Seur International"),
    ("SKNT", "sknt", "Skynet"),
    ("SEPST", "sepst", "Sweden Posten"),
    ("SEPSTUT", "sepstut", "Swedish Post untracked"),
    ("SPTUT", "sptut", "Swiss Post Untracked"),
    ("SPT", "spt", "SwissPost"),
    ("TNT", "tnt", "TNT"),
    ("TNTIT", "tntit", "TNT Italy"),
    ("TNTUT", "tntut", "TNT Untracked"),
    ("TRK", "trk", "TRAKPAK"),
    ("UKM", "ukm", "UK Mail"),
    ("UPS", "ups", "UPS"),
    ("WHISTL", "Whistl", "Whistl"),
    ("WISELOADS", "wiseloads", "Wiseloads"),
    ("XDPX", "xdpx", "XDP Express"),
    ("YDL", "ydl", "Yodel"),
)

# Either accepted spelling -> the code to send.
CARRIER_CODES: dict[str, str] = {spelling: code for code, alias, _ in APPROVED_CARRIERS for spelling in (code, alias)}


def approved_code(carrier: str) -> str | None:
    """The code to send for an accepted spelling of an approved courier, or None (not approved).

    Spellings are matched exactly, as the list gives them: "Ups" is neither of UPS's.
    """
    return CARRIER_CODES.get(carrier.strip())

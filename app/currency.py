"""ISO 4217 minor units: how many decimal places a currency's amounts have (pure, stdlib only).

Used to turn an amount in major units ("12.50" USD) into the integer minor units the product
counts in (1250), exactly: an amount with more decimal places than the currency has is refused,
never rounded.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded

NO_CURRENCY = "XXX"  # ISO 4217 "no currency": an event that names none

# The exceptions to the 2 decimal places of almost every currency (ISO 4217 list one, 2024).
# KPW is not here: ISO 4217 gives the North Korean won 2 decimal places.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}

# Codes ISO 4217 lists with no minor unit ("N.A."): no currency, testing, precious metals and
# bond-market units. An amount in them cannot be converted to minor units.
NO_MINOR_UNIT = frozenset(("XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA",
                           "XBA", "XBB", "XBC", "XBD"))

_CODE = re.compile(r"[A-Z]{3}")
_MAX_DIGITS = 40  # far more than any amount needs; keeps the arithmetic below cheap
# Exact arithmetic: an operation that would have to round raises instead.
_EXACT = Context(prec=2 * _MAX_DIGITS, traps=[Rounded, Inexact, InvalidOperation])
_known: dict[str, int] = {}  # valid codes seen so far -> exponent (at most 26**3 entries)


def exponent(code: str) -> int:
    """Decimal places of ``code`` (upper-case ISO 4217); ValueError if it has none."""
    places = _known.get(code) if type(code) is str else None
    if places is not None:
        return places
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"currency {code!r} is not a code of 3 letters A-Z")
    if code in NO_MINOR_UNIT:
        raise ValueError(f"currency {code} has no minor unit in ISO 4217"
                         + (" (it means no currency)" if code == NO_CURRENCY else ""))
    places = _known[code] = _EXPONENTS.get(code, 2)
    return places


def to_minor(amount: Decimal, code: str) -> int:
    """``amount`` in major units of ``code`` -> integer minor units, exactly.

    ValueError ("12.345 USD has more than 2 decimal places") if it is not a whole number of
    minor units, or if it is not a finite number of reasonable size.
    """
    places = exponent(code)
    if not amount.is_finite():
        raise ValueError(f"{amount} {code} is not a finite amount")
    try:
        if amount.adjusted() > _MAX_DIGITS:
            raise Rounded
        scaled = amount.scaleb(places, _EXACT)
    except (Rounded, Inexact):
        raise ValueError(f"{amount} {code} has too many digits") from None
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {code} has more than {places} decimal places")
    return int(scaled)

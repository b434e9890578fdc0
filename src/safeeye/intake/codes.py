"""The tracking code and PIN a visitor of the SOS page is given, and the code of the case
that her report opens.

The tracking code is random (10 characters from an alphabet without look-alikes: no 0/O,
1/I/L), shown in groups (``K7QM-3XPD-9H``) and read back however it is typed: lower case,
spaces, dashes. The PIN is 8 random digits made by us, never chosen by the visitor.
"""

from __future__ import annotations

import secrets
from datetime import datetime

#: Letters and digits nobody mistakes for one another when reading or typing them.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: 31^10: about 49.5 bits; a guess also needs the PIN, and both are throttled.
CODE_LENGTH = 10
GROUPS = (4, 4, 2)
PIN_DIGITS = 8
CASE_SUFFIX_LENGTH = 4


def new_tracking_code() -> str:
    """A new tracking code, in its canonical form (upper case, no separators)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def canonical_code(text: str) -> str:
    """What a person typed, as a tracking code is stored and compared: upper case, without
    spaces or dashes (any other character is kept, so the code simply is not found)."""
    kept = "".join(ch for ch in str(text)[:64] if ch not in " -\t\r\n")
    return kept.upper()


def grouped(code: str) -> str:
    """``K7QM3XPD9H`` as ``K7QM-3XPD-9H`` (easier to read aloud and copy)."""
    parts, start = [], 0
    for size in GROUPS:
        parts.append(code[start : start + size])
        start += size
    return "-".join(part for part in parts if part)


def new_pin() -> str:
    """A new PIN: ``PIN_DIGITS`` random digits (leading zeros kept)."""
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


def canonical_pin(text: str) -> str:
    """A typed PIN without spaces or dashes."""
    return "".join(ch for ch in str(text)[:64] if ch not in " -\t\r\n")


def new_case_code(day: datetime) -> str:
    """``SOS-20261207-K7QM``: the day of the report and a random suffix (the caller tries
    again in the rare case it is taken)."""
    suffix = "".join(secrets.choice(ALPHABET) for _ in range(CASE_SUFFIX_LENGTH))
    return f"SOS-{day:%Y%m%d}-{suffix}"

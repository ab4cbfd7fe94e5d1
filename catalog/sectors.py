"""SIC divisions: the catalog's sector vocabulary, shared by the synthetic market, the Polygon
sandbox and the Polygon instrument provider.

Polygon's ticker details carry a four-digit ``sic_code`` (plus an industry ``sic_description``)
rather than a sector. The catalog stores one sector name per instrument, so both directions are
needed: the instrument provider maps a real ``sic_code`` to its division name, and the sandbox
turns a catalog sector that is a division name back into a plausible ``sic_code``. Keeping the
table in one place guarantees that a round trip through the sandbox preserves the sector, and the
synthetic market names its sectors after divisions so a rehearsal over the Polygon sandbox trades
with the very sectors the backtest saw.
"""

from typing import NamedTuple


class SicDivision(NamedTuple):
    first: int  # inclusive
    last: int  # inclusive
    name: str
    representative_code: str
    representative_description: str


# Division ranges of the 1987 SIC manual (division K, "Nonclassifiable", is left out on purpose:
# it is not a sector a risk cap can group by). The representative code of each division is a
# common real industry in it, with the description Polygon/EDGAR use for that code.
SIC_DIVISIONS: tuple[SicDivision, ...] = (
    SicDivision(100, 999, "Agriculture", "0100", "AGRICULTURAL PRODUCTION-CROPS"),
    SicDivision(1000, 1499, "Mining", "1311", "CRUDE PETROLEUM & NATURAL GAS"),
    SicDivision(1500, 1799, "Construction", "1531", "OPERATIVE BUILDERS"),
    SicDivision(2000, 3999, "Manufacturing", "3571", "ELECTRONIC COMPUTERS"),
    SicDivision(4000, 4999, "Transportation & Utilities", "4911", "ELECTRIC SERVICES"),
    SicDivision(
        5000,
        5199,
        "Wholesale Trade",
        "5045",
        "WHOLESALE-COMPUTERS & PERIPHERAL EQUIPMENT & SOFTWARE",
    ),
    SicDivision(5200, 5999, "Retail Trade", "5331", "RETAIL-VARIETY STORES"),
    SicDivision(6000, 6799, "Finance", "6022", "STATE COMMERCIAL BANKS"),
    SicDivision(7000, 8999, "Services", "7372", "SERVICES-PREPACKAGED SOFTWARE"),
    SicDivision(9100, 9729, "Public Administration", "9721", "INTERNATIONAL AFFAIRS"),
)

_BY_NAME = {division.name: division for division in SIC_DIVISIONS}


def sic_division(code: str | int) -> str | None:
    """Division name of a SIC code, or None when the code is not numeric or lies in no division.

    Polygon omits or garbles ``sic_code`` for many tickers (funds, recent listings); None lets the
    caller fall back to its unknown-sector bucket instead of failing the whole instrument load."""
    try:
        value = int(str(code).strip())
    except ValueError:
        return None
    for division in SIC_DIVISIONS:
        if division.first <= value <= division.last:
            return division.name
    return None


def representative_sic(division: str) -> str | None:
    """A real SIC code inside ``division`` (None for names that are not a SIC division)."""
    found = _BY_NAME.get(division)
    return found.representative_code if found else None


def representative_sic_description(division: str) -> str | None:
    found = _BY_NAME.get(division)
    return found.representative_description if found else None

"""PureClarity's API regions and the hosts that serve them."""

from __future__ import annotations

# The codes PureClarity's own plugins know, in their order. Hosts follow one pattern.
REGION_CODES: tuple[str, ...] = (
    "eu-w-1",
    "eu-w-2",
    "eu-c-1",
    "us-e-1",
    "us-e-2",
    "us-w-1",
    "us-w-2",
    "ap-s-1",
    "ap-ne-1",
    "ap-ne-2",
    "ap-se-1",
    "ap-se-2",
    "ca-c-1",
    "sa-e-1",
)

# PureClarity's documentation names two regions by their short names.
REGION_ALIASES: dict[str, str] = {"eu": "eu-w-1", "us": "us-e-1"}

FORGET_PATH = "/api/user/forget"


def region_code(region: str) -> str | None:
    """Return the full region code for a code or alias, or None if unknown."""
    region = region.strip().lower()
    region = REGION_ALIASES.get(region, region)
    return region if region in REGION_CODES else None


def region_host(code: str) -> str:
    """Return the API base URL of a full region code."""
    return f"https://api-{code}.pureclarity.net"

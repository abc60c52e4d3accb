"""The RA Retrans Timer pxelab advertises (RFC 4861 4.2): OVMF's DAD waits that long."""

from __future__ import annotations

from ipaddress import IPv6Network

import pytest

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.server.ra.codec import RouterAdvertisement, decode, encode
from pxelab.server.ra.server import RaSettings, RouterAdvertiser

pytestmark = pytest.mark.unit

PREFIX = IPv6Network("2001:db8::/64")


@pytest.mark.parametrize("retrans", [0, 100])
def test_advertisement_carries_the_retrans_timer(retrans: int) -> None:
    settings = RaSettings("lab0", PREFIX, retrans_timer=retrans)
    advert = RouterAdvertiser(settings, EventLog()).advertisement(None)
    decoded = decode(encode(advert))
    assert isinstance(decoded, RouterAdvertisement) and decoded.retrans_timer == retrans


def test_negative_retrans_timer_is_refused() -> None:
    with pytest.raises(ConfigError, match="retrans_timer"):
        RaSettings("lab0", PREFIX, retrans_timer=-1)

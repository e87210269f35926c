"""How phone callers reach a VoiceAgent (``spec.telephony``: LiveKit SIP trunks and dispatch
rules the operator keeps in step), and what the model may do during a call (``spec.tools``)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import ResourceName, ShortString

E164 = r"^\+[1-9][0-9]{6,14}$"
SIP_OR_TEL_URI = r"^(sip:|sips:|tel:\+)[^\s]+$"
CIDR_OR_IP = r"^[0-9a-fA-F:.]+(/[0-9]{1,3})?$"


class SIPTrunkAuth(KubeModel):
    """Digest credentials callers' SIP providers must present."""

    secret_ref: ResourceName
    """Secret in the VoiceAgent's namespace holding the credentials."""
    username_key: ShortString = "username"
    """Key of the Secret that holds the username."""
    password_key: ShortString = "password"
    """Key of the Secret that holds the password."""


MIN_PREFIX = {False: 8, True: 32}
"""Shortest allowed SIP source prefix, by IPv6-ness."""


def _prefix_ok(address: str) -> bool:
    if "/" not in address:
        return True
    prefix = address.split("/", 1)[1]
    return prefix.isdigit() and int(prefix) >= MIN_PREFIX[":" in address]


class SIPTelephony(KubeModel):
    """Phone calls through LiveKit SIP: the operator keeps an inbound trunk and a dispatch rule
    in step with this."""

    phone_numbers: list[Annotated[str, StringConstraints(pattern=E164)]] = Field(
        min_length=1, max_length=100
    )
    """Phone numbers (E.164, e.g. ``+15551234567``) whose calls this agent answers."""
    allowed_addresses: list[
        Annotated[str, StringConstraints(pattern=CIDR_OR_IP, max_length=64)]
    ] = Field(default_factory=list, max_length=100)
    """IP addresses or CIDR ranges the SIP provider calls from; empty allows any."""
    auth: SIPTrunkAuth | None = None
    """Digest authentication required from the SIP provider."""
    room_prefix: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,32}$")] = "call-"
    """Prefix of the room created for each call (one room per call)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.allowedAddresses.size() > 0 || has(self.auth)",
            message="set allowedAddresses or auth: an open trunk would accept anyone's calls",
            check=lambda s: bool(s.allowed_addresses) or s.auth is not None,
            field_path=".allowedAddresses",
        ),
        Rule(
            cel="self.allowedAddresses.all(a, !a.contains('/')"
            " || int(a.split('/')[1]) >= (a.contains(':') ? 32 : 8))",
            message="allowedAddresses: a range wider than /8 (IPv4) or /32 (IPv6), such as "
            "0.0.0.0/0, lets the whole internet call the trunk; name the SIP provider's ranges",
            check=lambda s: all(_prefix_ok(a) for a in s.allowed_addresses),
            field_path=".allowedAddresses",
        ),
    )


class Telephony(KubeModel):
    """How phone callers reach the agent."""

    sip: SIPTelephony | None = None
    """Inbound phone calls through LiveKit SIP."""


class TransferTool(KubeModel):
    """Hand the call to a human."""

    to: Annotated[str, StringConstraints(pattern=SIP_OR_TEL_URI, max_length=512)]
    """Where phone callers are transferred: a ``tel:+1555...`` or ``sip:`` URI."""
    description: Annotated[str, StringConstraints(max_length=1024)] = (
        "Transfer the caller to a human agent when they ask for one or you cannot help."
    )
    """When the model should transfer; shown to the model as the tool's description."""


class Tools(KubeModel):
    """Actions the model may take during a call."""

    end_call: bool = True
    """Let the agent end the call once the conversation is over."""
    transfer: TransferTool | None = None
    """Let the agent transfer phone callers to a human."""

"""``VoiceAgent.spec.web``: callers in a browser. A small web gateway serves, for one agent, a
call page and an endpoint that starts a call: a short-lived LiveKit token for a new room, with
the agent dispatched to it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import DNS_SUBDOMAIN, ResourceName, SecretKeySelector

ORIGIN = r"^(\*|https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?)$"
"""A web origin as browsers send it (``https://www.example.com``, ``http://localhost:8080``),
or ``*``."""
METADATA_KEY = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
"""A per-call metadata key the agent can read (``customerId``)."""
WS_URL = r"^wss?://[^\s/$.?#][^\s]*$"


class WebAuth(KubeModel):
    """Who may start a call, besides coming from an allowed origin. Not set: anyone who can
    reach the endpoint from an allowed origin (a public help line), within the rate limit."""

    shared_key_secret_ref: SecretKeySelector | None = None
    """A key every request must carry (``Authorization: Bearer <key>``). For a team's backend,
    which then hands the token to its own page: a key in a public page is no secret."""


class WebRateLimit(KubeModel):
    """How many calls may be started per minute, for the agent as a whole (a token bucket):
    past it, requests are refused with 429 and a Retry-After."""

    calls_per_minute: int = Field(default=30, ge=1, le=6000)
    """Calls started per minute, on average."""
    burst: int = Field(default=10, ge=1, le=1000)
    """Calls that may start at once after a quiet time."""


class WebIngress(KubeModel):
    """An Ingress in front of the gateway's Service."""

    host: Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
    """The host name the page and endpoint are served under."""
    class_name: ResourceName | None = None
    """The IngressClass; default: the cluster's default class."""
    tls_secret_name: ResourceName | None = None
    """A Secret with the host's certificate; browsers give microphones to https pages only
    (and to localhost)."""


class WebAccess(KubeModel):
    """Browser callers: a call page, embeddable in a team's own site, and the endpoint it uses
    to start a call (``POST /v1/calls``). Each call is a new LiveKit room, the agent is
    dispatched to it, and the caller's token grants that room only."""

    livekit_url: Annotated[str, StringConstraints(pattern=WS_URL, max_length=2048)] | None = Field(
        default=None, alias="livekitURL"
    )
    """The LiveKit URL browsers connect to (``wss://livekit.example.com``), when
    spec.livekit.url is an address only the cluster reaches. Default: spec.livekit.url."""
    allowed_origins: list[Annotated[str, StringConstraints(pattern=ORIGIN, max_length=512)]] = (
        Field(default_factory=list, max_length=32)
    )
    """Pages on other sites that may start calls from the browser (CORS), as
    ``scheme://host[:port]``; ``*`` allows any. The gateway's own call page is always allowed;
    a request from any other origin is refused (403)."""
    auth: WebAuth = Field(default_factory=WebAuth)
    """Who may start a call."""
    rate_limit: WebRateLimit = Field(default_factory=WebRateLimit)
    """How fast calls may be started."""
    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    """How long a caller's token can be used to join its room (a call already joined goes on)."""
    metadata_keys: list[Annotated[str, StringConstraints(pattern=METADATA_KEY)]] = Field(
        default_factory=list, max_length=16
    )
    """Per-call values a page may pass (``{"metadata": {"customerId": "C-42"}}``, at most 256
    characters each), given to the agent with the call: the model reads them, fenced in the
    caller's message, as facts the caller's page stated, never as instructions (the offline
    ``local`` model does not see them on turns grounded by knowledge). A key not listed here
    is refused (400)."""
    title: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """The call page's heading. Default: the VoiceAgent's name."""
    ingress: WebIngress | None = None
    """Expose the gateway through an Ingress (else only its Service, for a team's own route)."""

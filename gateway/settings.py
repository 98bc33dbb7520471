from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from services.kit.config import NatsLogin, nats_login

NATS_USER = "gateway"

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Networks:
    """A list of addresses and networks from a setting (comma-separated IPs or CIDRs): the proxies whose
    `X-Forwarded-For` the gateway believes (ATRIUM_TRUSTED_PROXIES; any other peer's header is the client's
    own claim and ignored), the operators who see health details (ATRIUM_HEALTH_DETAILS_FROM)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, spec: str, setting: str = "ATRIUM_TRUSTED_PROXIES") -> Networks:
        try:
            return cls(
                tuple(ipaddress.ip_network(i.strip(), strict=False) for i in spec.split(",") if i.strip())
            )
        except ValueError as exc:
            raise ValueError(f"{setting}: {exc} (comma-separated IPs or CIDRs)") from None

    def contains(self, peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks)


LOOPBACK = "127.0.0.1,::1"


@dataclass
class GatewaySettings:
    nats_url: str = "nats://127.0.0.1:4222"
    web_dist: Path = ROOT / "web" / "dist"
    data_dir: Path = Path("var")
    rpc_timeout_s: float = 10.0
    # Cookies get `Secure` and the `__Host-` prefix when the public URL is https.
    public_url: str = "http://localhost:8080"
    # Only a proxy on this machine by default; compose sets the network nginx reaches the gateway from.
    trusted_proxies: Networks = field(default_factory=lambda: Networks.parse(LOOPBACK))
    # Who sees /health's details without an admin's token: the machine itself (its healthchecks, the CLI).
    health_details_from: Networks = field(default_factory=lambda: Networks.parse(LOOPBACK))
    # JSON and form bodies (uploads and avatars have their own limits): refused with 413 above this.
    max_body_bytes: int = 64 * 1024
    # Server-sent events: the session is checked again every heartbeat; open streams per user and gateway.
    sse_heartbeat_s: float = 15.0
    sse_streams_per_user: int = 8
    expected_services: tuple[str, ...] = field(default_factory=tuple)
    nats_login: NatsLogin = field(default_factory=NatsLogin)

    def __post_init__(self) -> None:
        if (
            not self.nats_login.password
        ):  # the gateway's own NATS user, from the environment or <data>/secrets
            self.nats_login = nats_login(NATS_USER, self.data_dir)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @classmethod
    def from_env(cls) -> GatewaySettings:
        env = os.environ
        return cls(
            nats_url=env.get("NATS_URL", cls.nats_url),
            web_dist=Path(env.get("ATRIUM_WEB_DIST", str(cls.web_dist))),
            data_dir=Path(env.get("ATRIUM_DATA", "var")),
            public_url=env.get("ATRIUM_PUBLIC_URL", cls.public_url),
            rpc_timeout_s=float(env.get("ATRIUM_RPC_TIMEOUT", "10")),
            health_details_from=Networks.parse(
                env.get("ATRIUM_HEALTH_DETAILS_FROM", LOOPBACK), "ATRIUM_HEALTH_DETAILS_FROM"
            ),
            sse_streams_per_user=int(env.get("ATRIUM_SSE_STREAMS_PER_USER", "8")),
            max_body_bytes=int(env.get("ATRIUM_MAX_BODY_KB", "64")) * 1024,
            trusted_proxies=Networks.parse(env.get("ATRIUM_TRUSTED_PROXIES", LOOPBACK)),
        )

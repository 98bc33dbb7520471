from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from services.kit.config import NatsLogin, nats_login

NATS_USER = "gateway"

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class GatewaySettings:
    nats_url: str = "nats://127.0.0.1:4222"
    web_dist: Path = ROOT / "web" / "dist"
    data_dir: Path = Path("var")
    rpc_timeout_s: float = 10.0
    # Cookies get `Secure` and the `__Host-` prefix when the public URL is https.
    public_url: str = "http://localhost:8080"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
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
        )

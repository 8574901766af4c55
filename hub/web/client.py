"""Who is on the other end: the client's address and scheme, through trusted proxies only.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the TCP peer is one of
``web.trusted_proxies``; the client is the right-most address in ``X-Forwarded-For`` that is
not itself a trusted proxy. Anyone else's forwarded headers are ignored, so a client cannot
pick the address its failed logins are counted against or recorded under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from hub.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"web.trusted_proxies: {entry!r} is not an address") from exc
        return cls(tuple(networks))

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def resolve(
        self, peer: str | None, forwarded_for: str | None, forwarded_proto: str | None
    ) -> tuple[str | None, str | None]:
        """(client address, scheme or None when the peer's own scheme stands)."""
        if not self.trusts(peer):
            return peer, None
        client = peer
        if forwarded_for:
            hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
            for hop in reversed(hops):
                client = hop
                if not self.trusts(hop):
                    break
            try:
                ipaddress.ip_address(client or "")
            except ValueError:
                client = peer
        scheme = None
        if forwarded_proto:
            proto = forwarded_proto.split(",")[0].strip().lower()
            scheme = proto if proto in ("http", "https") else None
        return client, scheme

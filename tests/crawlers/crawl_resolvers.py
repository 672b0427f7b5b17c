"""A Scrapy TWISTED_DNS_RESOLVER for the crawl tests (loaded by the source process, so it lives in its own module
on PYTHONPATH): names under `.test` answer from a fixed table, every other name goes to the normal resolver.

A table entry lists successive answers (the last one repeats), so `rebind.test` resolves to a public address the
first time and to 127.0.0.1 afterwards: a DNS rebinding between the address check and the connection."""

from __future__ import annotations

from collections import Counter

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHostnameResolver
from zope.interface import implementer

PUBLIC = "93.184.216.34"  # a global address; never connected to (the answers that reach a connection are loopback)
TABLE = {
    "pinned.test": [["127.0.0.1"]],
    "multi.test": [[PUBLIC, "127.0.0.1"]],  # one public and one loopback A record
    "rebind.test": [[PUBLIC], ["127.0.0.1"]],
}


class _Resolution:
    def __init__(self, name: str):
        self.name = name

    def cancel(self) -> None:
        return None


@implementer(IHostnameResolver)
class TableResolver:
    def __init__(self, reactor):
        self.reactor = reactor
        self.original = reactor.nameResolver
        self.calls: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler, reactor):
        return cls(reactor)

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None,  # noqa: N802, N803
                        transportSemantics="TCP"):  # noqa: N803
        answers = TABLE.get(hostName)
        if answers is None:
            return self.original.resolveHostName(receiver, hostName, portNumber, addressTypes, transportSemantics)
        ips = answers[min(self.calls[hostName], len(answers) - 1)]
        self.calls[hostName] += 1
        resolution = _Resolution(hostName)
        receiver.resolutionBegan(resolution)
        for ip in ips:
            receiver.addressResolved(IPv4Address("TCP", ip, portNumber))
        receiver.resolutionComplete()
        return resolution

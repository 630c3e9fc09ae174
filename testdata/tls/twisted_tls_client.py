"""A minimal VTP author over TLS, built the way the later Python Comet
builds its connections: twisted.internet.endpoints.clientFromString with a
"tls:HOST:PORT:trustRoots=DIR" string (Twisted verifies the server against
the *.pem files in DIR and checks the host name or IP address). It sends one
event and prints the role of the reply ("ack"), or "error ..." and exits 1.

Usage: python3 twisted_tls_client.py HOST PORT TRUSTDIR EVENT.xml
It gives up after 20 seconds.
"""
import re
import sys

from twisted.internet import endpoints, reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver

result = {"code": 1}


class Author(Int32StringReceiver):
    MAX_LENGTH = 1 << 20

    def connectionMade(self):
        self.sendString(self.factory.event)

    def stringReceived(self, data):
        m = re.search(rb'role="([a-z]+)"', data)
        print(m.group(1).decode() if m else "unparsable reply", flush=True)
        result["code"] = 0 if m and m.group(1) == b"ack" else 1
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if result["code"] != 0:
            print("error", reason.getErrorMessage(), flush=True)
        if reactor.running:
            reactor.stop()


def main():
    host, port, trust, path = sys.argv[1:5]
    factory = Factory.forProtocol(Author)
    with open(path, "rb") as f:
        factory.event = f.read()
    spec = "tls:%s:%s:trustRoots=%s" % (host, port, trust)
    d = endpoints.clientFromString(reactor, spec).connect(factory)

    def failed(f):
        print("error", f.getErrorMessage(), flush=True)
        reactor.stop()

    d.addErrback(failed)
    reactor.callLater(20, reactor.stop)
    reactor.run()
    sys.exit(result["code"])


if __name__ == "__main__":
    main()

"""A minimal VTP receiver over TLS, built the way the later Python Comet
builds its listeners: twisted.internet.endpoints.serverFromString with an
"ssl:" string. It acks every event it receives (4-byte big-endian length,
then XML) and prints its port on the first line of stdout.

Usage: python3 twisted_vtp_server.py KEY.pem CERT.pem
It stops by itself after 60 seconds.
"""
import re
import sys
from datetime import datetime, timezone

from twisted.internet import endpoints, reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver

ACK = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    '<trn:Transport xmlns:trn="http://www.telescope-networks.org/xml/Transport/v1.1" '
    'version="1.0" role="ack"><Origin>{ivorn}</Origin>'
    "<Response>ivo://twisted.test/broker</Response>"
    "<TimeStamp>{now}</TimeStamp></trn:Transport>"
)


class Receiver(Int32StringReceiver):
    MAX_LENGTH = 1 << 20

    def stringReceived(self, data):
        m = re.search(rb'ivorn="([^"]+)"', data)
        if not m:
            self.transport.loseConnection()
            return
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        self.sendString(ACK.format(ivorn=m.group(1).decode(), now=now).encode())


def main():
    key, cert = sys.argv[1], sys.argv[2]
    spec = "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (key, cert)
    d = endpoints.serverFromString(reactor, spec).listen(Factory.forProtocol(Receiver))

    def listening(port):
        print(port.getHost().port, flush=True)

    def failed(f):
        print("error", f.getErrorMessage(), flush=True)
        reactor.stop()

    d.addCallbacks(listening, failed)
    reactor.callLater(60, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()

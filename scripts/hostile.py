#!/usr/bin/env python3
"""Hostile load against a comet broker on loopback (see scripts/hostile.sh).

Runs every attack class of the "safe on an open port" issue at once, for a
bounded time, with an honest author and an honest subscriber alongside, and
prints one JSON object: the honest peers' latencies and what each attack did.
Loopback only; every loop is bounded in count and time.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

RECV, BCAST, UPSTREAM_PORT, DURATION = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
HOST = "127.0.0.1"
stop = threading.Event()
stats = {}
lock = threading.Lock()


def count(name, n=1):
    with lock:
        stats[name] = stats.get(name, 0) + n


def frame(b):
    return struct.pack(">I", len(b)) + b


def read_frame(s):
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c:
            return None
        hdr += c
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        c = s.recv(min(65536, n - len(body)))
        if not c:
            return None
        body += c
    return body


def event(local, body=b"", extra_root=b""):
    return (b"<?xml version='1.0' encoding='UTF-8'?>\n<voe:VOEvent xmlns:voe=\"http://www.ivoa.net/xml/VOEvent/v2.0\" "
            + extra_root + b" ivorn=\"ivo://hostile.test/x#" + local.encode() + b"\" role=\"observation\" version=\"2.0\">\n"
            b"<Who><AuthorIVORN>ivo://hostile.test/x</AuthorIVORN><Date>2026-11-22T02:14:27</Date></Who>\n"
            b"<What><Param name=\"t\" value=\"" + str(time.time()).encode() + b"\"/>" + body + b"</What>\n</voe:VOEvent>\n")


# Honest peers connect from 127.0.0.1; each attack from an address of its
# own (127.0.0.2 and up), as attackers on a network would.
ATTACKER = threading.local()


def connect(port, timeout=5):
    src = getattr(ATTACKER, "addr", None)
    s = socket.create_connection((HOST, int(port)), timeout=timeout, source_address=(src, 0) if src else None)
    return s


def attacker(n, f):
    def run(*args):
        ATTACKER.addr = "127.0.0.%d" % (n + 2)
        f(*args)
    return run


def submit(ev, timeout=20):
    s = connect(RECV, timeout)
    try:
        s.sendall(frame(ev))
        return read_frame(s)
    finally:
        s.close()


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))] * 1000, 2)


# --- honest peers -----------------------------------------------------------
ack_lat, recv_lat, sent_at = [], [], {}


def honest_author():
    i = 0
    while not stop.is_set():
        local = "honest-%d" % i
        t0 = time.time()
        sent_at[local] = t0
        try:
            r = submit(event(local))
            if r and b'role="ack"' in r:
                ack_lat.append(time.time() - t0)
            else:
                count("honest_author_failed")
        except OSError:
            count("honest_author_failed")
        i += 1
        time.sleep(0.1)


def subscriber(name, filters=None, read=True, alternate_ua=False, heavy=None):
    try:
        s = connect(BCAST, 10)
        auth = read_frame(s)
        params = b""
        for f in (filters or []):
            params += b'<Param name="xpath-filter" value="' + f + b'"/>'
        resp = (b"<?xml version='1.0'?><trn:Transport xmlns:trn=\"http://www.telescope-networks.org/xml/Transport/v1.1\" version=\"1.0\" role=\"authenticate\">"
                b"<Origin>ivo://x/y</Origin><TimeStamp>2026-01-01T00:00:00Z</TimeStamp><Meta>" + params + b"</Meta></trn:Transport>")
        s.sendall(frame(resp))
        if not read:
            stop.wait(DURATION + 5)
            s.close()
            return
        s.settimeout(1)
        n = 0
        while not stop.is_set():
            try:
                m = read_frame(s)
            except socket.timeout:
                continue
            if m is None:
                count(name + "_dropped")
                return
            if b'role="iamalive"' in m[:600]:
                ua = b"evil/%d" % (n % 2) if alternate_ua else b"honest/1"
                s.sendall(frame(b"<?xml version='1.0'?><trn:Transport xmlns:trn=\"http://www.telescope-networks.org/xml/Transport/v1.1\" version=\"1.0\" role=\"iamalive\"><Origin>ivo://x/y</Origin><TimeStamp>2026-01-01T00:00:00Z</TimeStamp><Meta><Param name=\"User-Agent\" value=\"" + ua + b"\"/></Meta></trn:Transport>"))
                n += 1
                continue
            i = m.find(b'ivorn="ivo://hostile.test/x#')
            if i >= 0:
                local = m[i + 28:m.index(b'"', i + 28)].decode()
                if name == "honest_subscriber" and local in sent_at:
                    recv_lat.append(time.time() - sent_at[local])
                s.sendall(frame(b"<?xml version='1.0'?><trn:Transport xmlns:trn=\"http://www.telescope-networks.org/xml/Transport/v1.1\" version=\"1.0\" role=\"ack\"><Origin>" + m[i + 7:m.index(b'"', i + 7)] + b"</Origin><TimeStamp>2026-01-01T00:00:00Z</TimeStamp></trn:Transport>"))
                count(name + "_events")
    except OSError:
        count(name + "_error")


# --- attacks ----------------------------------------------------------------
def attack_quadratic():
    # One start tag with very many attributes; many namespace declarations.
    attrs = b" ".join(b"a%d='1'" % i for i in range(60000))
    decls = b" ".join(b"xmlns:p%d='urn:x%d'" % (i, i) for i in range(30000))
    for k in range(4):
        if stop.is_set():
            return
        for name, root in (("attrs", attrs), ("decls", decls)):
            t0 = time.time()
            try:
                submit(event("quad-%s-%d" % (name, k), extra_root=root), timeout=30)
            except OSError:
                pass
            count("quadratic_" + name + "_ms_max", 0)
            with lock:
                stats["quadratic_" + name + "_ms_max"] = max(stats["quadratic_" + name + "_ms_max"], round((time.time() - t0) * 1000))


def attack_big_concurrent():
    pad = b"<Description>" + b"x" * (1000 * 1000) + b"</Description>"
    addr = ATTACKER.addr

    def one(i):
        ATTACKER.addr = addr
        try:
            submit(event("big-%d" % i, body=pad), timeout=30)
            count("big_submitted")
        except OSError:
            count("big_failed")
    for rnd in range(3):
        ts = [threading.Thread(target=one, args=(rnd * 50 + i,)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        if stop.is_set():
            return


def attack_partial_frames():
    held = []
    for i in range(400):
        if stop.is_set():
            break
        try:
            s = connect(RECV)
            s.sendall(struct.pack(">I", 1 << 20) + b"<" + b"a" * 60000)
            held.append(s)
        except OSError:
            count("partial_refused")
    count("partial_held", len(held))
    stop.wait(DURATION)
    for s in held:
        s.close()


def attack_idle_flood():
    held = []
    for i in range(1100):
        if stop.is_set():
            break
        try:
            held.append(connect(RECV, 2))
        except OSError:
            count("idle_refused")
    count("idle_opened", len(held))
    stop.wait(DURATION)
    for s in held:
        s.close()


def attack_tiny_frames():
    n = 0
    t_end = time.time() + DURATION
    while not stop.is_set() and time.time() < t_end and n < 200000:
        try:
            s = connect(RECV, 1)
            s.sendall(b"\x00\x00\x00\x00")
            s.close()
        except OSError:
            count("tiny_refused")
        n += 1
    count("tiny_frames", n)


def fake_upstream():
    # The broker subscribes here: we send it what is not XML, then real ones.
    ln = socket.socket()
    ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ln.bind((HOST, UPSTREAM_PORT))
    ln.listen(4)
    ln.settimeout(1)
    while not stop.is_set():
        try:
            c, _ = ln.accept()
        except socket.timeout:
            continue
        try:
            c.sendall(frame(b"<?xml version='1.0'?><trn:Transport xmlns:trn=\"http://www.telescope-networks.org/xml/Transport/v1.1\" version=\"1.0\" role=\"authenticate\"><Origin>ivo://up/x</Origin><TimeStamp>2026-01-01T00:00:00Z</TimeStamp></trn:Transport>"))
            i = 0
            while not stop.is_set() and i < 2000:
                bad = event("up-bad-%d" % i).replace(b"</Who>", b"</Whom>")
                c.sendall(frame(bad))
                i += 1
                time.sleep(0.005)
            count("upstream_bad_sent", i)
        except OSError:
            pass
        c.close()
    ln.close()


def main():
    threads = [threading.Thread(target=honest_author, daemon=True), threading.Thread(target=fake_upstream, daemon=True)]
    for n, f in enumerate((attack_quadratic, attack_big_concurrent, attack_partial_frames, attack_idle_flood, attack_tiny_frames)):
        threads.append(threading.Thread(target=attacker(n, f), daemon=True))
    threads.append(threading.Thread(target=subscriber, args=("honest_subscriber",), daemon=True))
    threads.append(threading.Thread(target=attacker(5, subscriber), args=("stuck_subscriber", None, False), daemon=True))
    heavy = [b"count(//*[count(//*[count(//*) &gt; 0]) &gt; 0]) &lt; 0"] * 64
    threads.append(threading.Thread(target=attacker(6, subscriber), args=("heavy_filter_subscriber", heavy), daemon=True))
    threads.append(threading.Thread(target=attacker(7, subscriber), args=("ua_flapper", None, True, True), daemon=True))
    for t in threads:
        t.start()
        time.sleep(0.05)
    time.sleep(DURATION)
    stop.set()
    time.sleep(1)
    out = dict(stats)
    out.update({
        "honest_acks": len(ack_lat), "honest_ack_p50_ms": pct(ack_lat, 0.5), "honest_ack_p99_ms": pct(ack_lat, 0.99),
        "honest_received": len(recv_lat), "honest_receipt_p50_ms": pct(recv_lat, 0.5), "honest_receipt_p99_ms": pct(recv_lat, 0.99),
    })
    print(json.dumps(out, sort_keys=True))


main()

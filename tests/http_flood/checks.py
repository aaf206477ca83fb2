#!/usr/bin/env python3
"""The HTTP front against real reelds (started by tests/http_flood_test.sh):
bounded request heads, a flood of connections, the connection cap,
pipelining, --metrics-listen and X-Content-Type-Options on every answer.

Environment: REEL_PORT, REEL_PID, REEL_KEY, REEL_METRICS_PORT (the main
node, started with --metrics-listen), REEL_SMALL_PORT and REEL_SMALL_PID (a
node with --http-max-connections 4 --http-threads 2). Exits non-zero at the
first failed check; every check has a timeout.
"""

import os
import random
import re
import select
import socket
import sys
import threading
import time

PORT = int(os.environ["REEL_PORT"])
PID = int(os.environ["REEL_PID"])
KEY = os.environ["REEL_KEY"]
METRICS_PORT = int(os.environ["REEL_METRICS_PORT"])
SMALL_PORT = int(os.environ["REEL_SMALL_PORT"])
SMALL_PID = int(os.environ["REEL_SMALL_PID"])
MIB = 1 << 20


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def rss(pid):
    """VmRSS of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    fail(f"no VmRSS for {pid}")


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def exchange(data, port=PORT, timeout=5.0):
    """Sends `data` on a fresh connection and reads until the server closes
    or `timeout` passes; returns the bytes read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        s.sendall(data)
        deadline = time.time() + timeout
        while time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not d:
                break
            got += d
    finally:
        s.close()
    return got


def request(path, port=PORT, headers=(), timeout=5.0):
    """One GET with Connection: close; returns (status, headers dict, body)."""
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return parse(exchange(head.encode(), port, timeout))


def parse(raw):
    """(status, headers with lower-case names, body) of the first answer."""
    m = re.match(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n", raw)
    if not m:
        return 0, {}, raw
    head, _, body = raw.partition(b"\r\n\r\n")
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.decode().strip().lower()] = v.decode().strip()
    return int(m.group(1)), hdrs, body


def endless_head(lines, label, rss_bound=32 * MIB, total=200 * MIB):
    """Sends a request line, then `lines` (bytes, repeated) without end, up
    to `total` bytes or until the server answers or stops reading. The node
    must answer 431 (or close) within 20 s and grow by less than rss_bound."""
    before = rss(PID)
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.setblocking(False)
    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    chunk = lines * max(1, 65536 // len(lines))
    sent = 0
    got = b""
    started = time.time()
    closed = False
    poller = select.poll()
    poller.register(s.fileno(), select.POLLIN | select.POLLOUT)
    while sent < total and time.time() - started < 20:
        events = dict(poller.poll(500))
        ev = events.get(s.fileno(), 0)
        r = ev & (select.POLLIN | select.POLLHUP | select.POLLERR)
        w = ev & select.POLLOUT
        if r:
            try:
                d = s.recv(65536)
            except OSError:
                closed = True
                break
            if not d:
                closed = True
                break
            got += d
            if b"\r\n\r\n" in got:
                break
        if w:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
    # Whatever came back before the close.
    s.setblocking(True)
    s.settimeout(2)
    try:
        while b"\r\n\r\n" not in got:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    took = time.time() - started
    status, hdrs, _ = parse(got)
    grew = rss(PID) - before
    if status not in (431, 0) or (status == 0 and not closed):
        fail(f"{label}: after {sent} bytes in {took:.1f} s: answered {got[:80]!r}")
    if took >= 20:
        fail(f"{label}: still reading after 20 s ({sent} bytes)")
    if status == 431 and hdrs.get("x-content-type-options") != "nosniff":
        fail(f"{label}: 431 without nosniff: {got[:300]!r}")
    if grew >= rss_bound:
        fail(f"{label}: the node grew by {grew / MIB:.1f} MiB (bound {rss_bound / MIB:.0f})")
    ok(f"{label}: {status or 'closed'} after {sent / MIB:.2f} MiB sent in "
       f"{took:.2f} s; node RSS {before / MIB:.1f} -> {(before + grew) / MIB:.1f} MiB")


def metric(text, name, labels):
    """The value of one series in a Prometheus text scrape, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, _, value = line.rpartition(" ")
            got = series[len(name) + 1:-1]
            if ",".join(sorted(got.split(","))) == want:
                return float(value)
    return None


def scrape():
    status, _, body = request("/metrics", port=METRICS_PORT)
    if status != 200:
        fail(f"/metrics on the metrics listener answered {status}")
    return body.decode()


# ---------------------------------------------------------------- checks


def check_nosniff():
    for path, headers, want in [
        ("/healthz", (), 200),
        ("/no/such/route", (), 404),
        ("/v1/videos", (), 401),
        ("/v1/videos?limit=0", [("Authorization", f"Bearer {KEY}")], 400),
        ("/media/nothing/master.m3u8", (), 404),
    ]:
        status, hdrs, body = request(path, headers=headers)
        if status != want:
            fail(f"GET {path}: {status}, not {want}: {body[:200]!r}")
        if hdrs.get("x-content-type-options") != "nosniff":
            fail(f"GET {path} ({status}): no X-Content-Type-Options: nosniff in {hdrs}")
        if hdrs.get("access-control-allow-origin") != "*":
            fail(f"GET {path} ({status}): CORS header missing: {hdrs}")
    ok("X-Content-Type-Options: nosniff on 200, 404, 401, 400 and a media 404")


def check_head_limits():
    many = "".join(f"X-Field-{i}: {i}\r\n" for i in range(50))
    status, _, body = parse(exchange(
        f"GET /v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"{many}Connection: close\r\n\r\n".encode()))
    if status != 200:
        fail(f"a request with 50 more header fields: {status} {body[:200]!r}")
    ok("a request with 53 header fields: 200")

    fields = "".join(f"X-Field-{i}: {i}\r\n" for i in range(101))
    status, hdrs, body = parse(exchange(
        f"GET /healthz HTTP/1.1\r\n{fields}\r\n".encode()))
    if status != 431 or hdrs.get("connection") != "close":
        fail(f"101 header fields: {status} {hdrs}")
    if hdrs.get("x-content-type-options") != "nosniff":
        fail(f"the 431 has no nosniff: {hdrs}")
    ok(f"101 header fields: 431 ({body.decode().strip()})")

    status, _, body = parse(exchange(
        b"GET /healthz?" + b"a" * (9 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
    if status != 414:
        fail(f"a 9 KiB request line: {status} {body[:100]!r}")
    ok(f"a 9 KiB request line: 414 ({body.decode().strip()})")

    # httplib's own limit of 8 KiB per header line still answers 400.
    status, _, _ = parse(exchange(
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: {'k' * 10000}\r\n"
        "Connection: close\r\n\r\n".encode()))
    if status != 400:
        fail(f"a 10000-byte header line: {status}, not 400")
    ok("a 10000-byte header line (within 32 KiB): httplib's 400")


def check_endless_heads():
    endless_head(b"X-Filler: " + b"a" * 1000 + b"\r\n", "1 KiB header lines without end")
    endless_head(b"a" * 4096, "one header line without end")
    endless_head(b"a:b\r\n", "tiny header lines without end")


def check_pipelining():
    one = f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = f"GET /v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
    raw = exchange((one * 5 + last).encode())
    codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
    if codes != [b"200"] * 6:
        fail(f"6 pipelined requests in one write: answers {codes}")
    ok("6 pipelined requests in one write: 6 answers of 200")


def check_slow_head(result):
    """A head that never ends (one byte a second) is dropped at the head
    deadline (10 s), holding no thread meanwhile."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=2)
    s.send(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    started = time.time()
    while time.time() - started < 20:
        try:
            s.send(b"a")
            s.settimeout(1)
            d = s.recv(100)
            if not d:
                break
        except socket.timeout:
            continue
        except OSError:
            break
    result.append(time.time() - started)
    s.close()


def rawsock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    return s


def settle(socks, timeout):
    """Waits until every non-blocking connect of `socks` finished (or
    `timeout` passed); returns those connected."""
    pending = {s.fileno(): s for s in socks}
    connected = []
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        p = select.poll()
        for fd in pending:
            p.register(fd, select.POLLOUT)
        for fd, ev in p.poll(200):
            s = pending.pop(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(s)
    return connected


def still_open(socks):
    """How many of `socks` the server has not closed."""
    p = select.poll()
    for s in socks:
        p.register(s.fileno(), select.POLLIN | select.POLLRDHUP)
    gone = {fd for fd, ev in p.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)}
    return sum(1 for s in socks if s.fileno() not in gone)


def check_flood():
    """Thousands of connections at once, idle ones and ones sending junk:
    others are answered meanwhile, memory stays bounded, and afterwards the
    node answers."""
    before = rss(PID)
    idle = [rawsock(PORT) for _ in range(2500)]
    junk = [rawsock(PORT) for _ in range(1500)]
    # Connects past the listen backlog are retried by the kernel (after
    # 1 s, then 3 s): give them time.
    connected = settle(idle + junk, 6)
    rng = random.Random(7)
    pieces = [b"GET /", b"\r\n", b"X: y\r\n", b"\x00\xff" * 50, b"POST / HTTP/1.1\r\n",
              b"GET / HTTP/1.1\r\nHost: x\r\n", bytes(rng.getrandbits(8) for _ in range(300))]
    junk_set = set(junk)
    sent = 0
    for s in connected:
        if s in junk_set:
            try:
                sent += s.send(b"".join(rng.choice(pieces) for _ in range(8)))
            except OSError:
                pass
    peak = rss(PID)
    answered = []
    for _ in range(3):
        for path, headers in [("/healthz", ()),
                              ("/v1/videos", [("Authorization", f"Bearer {KEY}")])]:
            started = time.time()
            status, _, body = request(path, headers=headers, timeout=8)
            took = time.time() - started
            if status != 200:
                fail(f"during the flood, GET {path}: {status} after {took:.1f} s {body[:100]!r}")
            answered.append(took)
        # More junk meanwhile, on the connections still open.
        for s in junk[::5]:
            try:
                sent += s.send(rng.choice(pieces))
            except OSError:
                pass
        peak = max(peak, rss(PID))
    text = scrape()
    open_now = metric(text, "reel_http_connections", {"listener": "main"})
    evicted = metric(text, "reel_http_connections_evicted_total", {"listener": "main"})
    if open_now is None or open_now > 1024:
        fail(f"reel_http_connections is {open_now} during the flood (cap 1024)")
    if not evicted:
        fail(f"no connection was evicted by a flood of 4000 (evicted {evicted})")
    grew = peak - before
    if grew >= 64 * MIB:
        fail(f"the node grew by {grew / MIB:.1f} MiB during the flood (bound 64)")
    left = still_open(connected)
    for s in idle + junk:
        s.close()
    ok(f"flood of 4000 connections ({len(connected)} connected, {sent} junk bytes): "
       f"/healthz and /v1/videos answered 200 in at most {max(answered):.2f} s; "
       f"node: {int(open_now)} open, {int(evicted)} evicted; {left} of the flood still "
       f"open; node RSS {before / MIB:.1f} -> at most {peak / MIB:.1f} MiB")
    time.sleep(0.5)
    status, _, _ = request("/healthz")
    if status != 200:
        fail(f"after the flood, /healthz: {status}")
    ok("after the flood: /healthz 200")


def check_metrics_listener():
    status, hdrs, body = request("/metrics", port=METRICS_PORT)
    text = body.decode()
    if status != 200 or "reel_http_requests_total" not in text:
        fail(f"/metrics on --metrics-listen: {status} {text[:200]!r}")
    if hdrs.get("x-content-type-options") != "nosniff":
        fail(f"/metrics on --metrics-listen: no nosniff: {hdrs}")
    for name in ["reel_http_connections", "reel_http_connections_refused_total",
                 "reel_http_connections_evicted_total", "reel_http_heads_refused_total",
                 "reel_http_requests_waiting", "reel_http_worker_threads"]:
        if f"\n{name}{{" not in text:
            fail(f"/metrics lacks {name}")
    status, _, body = request("/healthz", port=METRICS_PORT)
    if status != 200 or b'"ok"' not in body:
        fail(f"/healthz on --metrics-listen: {status} {body!r}")
    status, hdrs, body = request("/metrics")
    if status != 404:
        fail(f"/metrics on the main port with --metrics-listen: {status}, not 404")
    if hdrs.get("x-content-type-options") != "nosniff":
        fail("the main port's 404 for /metrics has no nosniff")
    too_large = metric(text, "reel_http_heads_refused_total",
                       {"listener": "main", "reason": "too_large"})
    too_many = metric(text, "reel_http_heads_refused_total",
                      {"listener": "main", "reason": "too_many_fields"})
    if not too_large or not too_many:
        fail(f"heads refused not counted: too_large {too_large}, too_many_fields {too_many}")
    ok(f"--metrics-listen: /metrics 200 and /healthz 200 there, 404 on the main port; "
       f"heads refused too_large={int(too_large)} too_many_fields={int(too_many)}")


def check_cap():
    """A node with --http-max-connections 4: idle connections make room for
    a new one (the longest waiting is closed); when all 4 are being
    answered (bodies that trickle), a new one gets 503."""
    idle = [socket.create_connection(("127.0.0.1", SMALL_PORT)) for _ in range(4)]
    time.sleep(0.3)
    status, _, _ = request("/healthz", port=SMALL_PORT)
    if status != 200:
        fail(f"cap 4, 4 idle connections open: a fifth got {status}")
    idle[0].settimeout(2)
    try:
        first_closed = idle[0].recv(1) == b""
    except socket.timeout:
        first_closed = False
    except OSError:
        first_closed = True
    if not first_closed:
        fail("cap 4: the connection waiting longest was not closed for the newcomer")
    for s in idle:
        s.close()
    ok("cap 4: with 4 idle connections a fifth is answered; the oldest idle one was closed")

    # Four requests whose bodies never finish keep four workers busy.
    busy = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", SMALL_PORT))
        s.send(b"POST /v1/folders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1000\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n{")
        busy.append(s)
    time.sleep(0.5)
    status, hdrs, body = request("/healthz", port=SMALL_PORT, timeout=3)
    for s in busy:
        s.close()
    if status != 503 or hdrs.get("x-content-type-options") != "nosniff":
        fail(f"cap 4, 4 requests being answered: a fifth got {status} {hdrs} {body!r}")
    ok(f"cap 4, 4 requests being answered: a fifth gets 503 ({body.decode().strip()})")
    time.sleep(0.3)
    deadline = time.time() + 5
    while True:
        status, _, _ = request("/healthz", port=SMALL_PORT)
        if status == 200:
            break
        if time.time() > deadline:
            fail(f"cap 4: after the slow requests ended, /healthz: {status}")
        time.sleep(0.2)
    ok("cap 4: answered again once those requests ended")


def main():
    # The slow head runs beside the checks that open few connections (the
    # flood would close it to make room: it is the longest waiting).
    slow = []
    slow_thread = threading.Thread(target=check_slow_head, args=(slow,))
    slow_thread.start()
    check_nosniff()
    check_head_limits()
    check_pipelining()
    check_endless_heads()
    check_metrics_listener()
    slow_thread.join(30)
    if not slow or not 8 <= slow[0] <= 14:
        fail(f"a head sent a byte a second was not dropped at the 10 s deadline: {slow}")
    ok(f"a head sent a byte a second: dropped after {slow[0]:.1f} s")
    check_flood()
    check_cap()
    text = scrape()
    timeouts = metric(text, "reel_http_heads_refused_total",
                      {"listener": "main", "reason": "timeout"})
    if not timeouts:
        fail("the slow head was not counted as reason=timeout")
    for pid in (PID, SMALL_PID):
        if not alive(pid):
            fail(f"reeld {pid} died")
    print("PASS", flush=True)


if __name__ == "__main__":
    main()

"""Real DNS for integration tests: Debian's nsd on loopback, serving zone files we write.

Usage:
    with DnsServer({".": [rr("mail.example.com", "A", "192.0.2.1"), ...]},
                   drop={("slow.example.com", None)}) as dns:
        dns.address   # "127.0.0.1:PORT" for a digue config's [dns] servers

Contract:
- Zone files and nsd.conf go into a fresh temp dir; nsd runs in the foreground (-d), without
  chroot or privilege drop, with its pid/xfrd/log files in that dir, on 127.0.0.1 and a free
  port. start() waits (bounded) until nsd answers a SOA query; stop() always ends it (TERM,
  then KILL) and removes the dir. The context manager stops it even when the body raises.
- Names and TXT strings may hold any byte: they are written with RFC 1035 \\DDD escapes.
- `drop`: (name, type-or-None) pairs whose queries must go unanswered, to make a resolver
  time out. nsd cannot drop queries for chosen names, and a stub resolver talks to nsd
  directly (so a delegation to a dead server would only be a referral, not a timeout).
  When `drop` is set, clients talk to a small UDP/TCP relay in this process that forwards
  every other query to nsd unchanged and ignores the dropped ones.
- `garble`: (name, type-or-None) pairs whose answers the relay replaces with a malformed one
  (the header announces one answer record whose rdata is cut short), to test how clients
  handle a broken packet (c-ares: EBADRESP).
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import accept_loop

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
              "AAAA": 28, "SPF": 99}
START_TIMEOUT = 5.0


def escape_bytes(data, keep):
    """RFC 1035 presentation: bytes outside `keep` become \\DDD."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    out = []
    for b in data:
        c = chr(b)
        out.append(c if (c.isascii() and (c.isalnum() or c in keep)) else "\\%03d" % b)
    return "".join(out)


def name_text(name):
    """An absolute owner/target name; every odd character escaped, labels kept."""
    if name in ("", "."):
        return "."
    name = name.rstrip(".") if isinstance(name, str) else name.rstrip(b".")
    return escape_bytes(name, "-_.*") + "."


def txt_rdata(strings):
    """TXT rdata from one string or a list of strings (each <= 255 bytes after encoding)."""
    if isinstance(strings, (str, bytes)):
        strings = [strings]
    if not strings:
        # A TXT record needs at least one character-string; an empty one is the closest.
        return '""'
    return " ".join('"%s"' % escape_bytes(s, " !#$%&'()*+,-./:;<=>?@[]^_`{|}~")
                    for s in strings)


def rr(name, rtype, rdata, ttl=300):
    """One record. rdata: presentation text, except TXT/SPF (strings) and names (PTR, CNAME,
    NS: a domain name; MX: (preference, host))."""
    rtype = rtype.upper()
    if rtype in ("TXT", "SPF"):
        rdata = txt_rdata(rdata)
    elif rtype in ("PTR", "CNAME", "NS"):
        rdata = name_text(rdata)
    elif rtype == "MX":
        pref, host = rdata
        rdata = "%d %s" % (int(pref), name_text(host))
    return "%s %d IN %s %s" % (name_text(name), ttl, rtype, rdata)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def make_query(name, qtype, qid=0x1234):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = [l for l in name.rstrip(".").encode().split(b".") if l]
    q += b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
    return q + struct.pack(">HH", TYPE_CODES[qtype], 1)


def parse_question(packet):
    """(lower-case name without trailing dot as bytes, qtype) of a query, or None."""
    try:
        if struct.unpack(">H", packet[4:6])[0] < 1:
            return None
        pos, labels = 12, []
        while True:
            n = packet[pos]
            if n == 0:
                pos += 1
                break
            if n & 0xC0:
                return None
            labels.append(packet[pos + 1:pos + 1 + n])
            pos += 1 + n
        qtype = struct.unpack(">H", packet[pos:pos + 2])[0]
        return b".".join(labels).lower(), qtype
    except (IndexError, struct.error):
        return None


def garbled_reply(query):
    """A reply to `query` whose single A answer record is cut short: a malformed packet."""
    q = parse_question(query)
    if q is None:
        return None
    qend = 12 + sum(len(label) + 1 for label in q[0].split(b".") if label) + 1 + 4
    header = query[:2] + bytes([0x84 | (query[2] & 0x01), 0x00]) + struct.pack(">HHHH", 1, 1, 0, 0)
    # Owner = pointer to the question name, type A, class IN, TTL 60, RDLENGTH 4, 2 bytes.
    record = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + b"\x7f\x00"
    return header + query[12:qend] + record


class _DropRelay:
    """Forwards queries to nsd, ignoring the ones `should_drop` selects and answering the ones
    `should_garble` selects with a malformed reply (UDP and TCP)."""

    def __init__(self, upstream_port, should_drop, should_garble=lambda n, t: False):
        self.upstream = ("127.0.0.1", upstream_port)
        self.should_drop = should_drop
        self.should_garble = should_garble
        self.port = free_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def _forward(self, packet):
        q = parse_question(packet)
        if q is not None and self.should_drop(*q):
            return None
        if q is not None and self.should_garble(*q):
            return garbled_reply(packet)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(packet, self.upstream)
            try:
                reply = s.recv(65535)
            except socket.timeout:
                return None
        if len(reply) > 2 and reply[2] & 0x02:  # truncated: ask nsd over TCP
            with socket.create_connection(self.upstream, timeout=2.0) as s:
                s.sendall(struct.pack(">H", len(packet)) + packet)
                reply = _read_tcp_message(s)
        return reply

    def _udp_loop(self):
        self.udp.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                packet, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._udp_one, args=(packet, peer), daemon=True).start()

    def _udp_one(self, packet, peer):
        reply = self._forward(packet)
        if reply is not None:
            if len(reply) > 512 and not _has_edns(packet):
                reply = reply[:2] + bytes([reply[2] | 0x02]) + reply[3:12]  # TC, header only
                reply = reply[:4] + b"\0\0\0\0\0\0\0\0"
            try:
                self.udp.sendto(reply, peer)
            except OSError:
                pass

    def _tcp_loop(self):
        accept_loop(self.tcp, self.stopping,
                    lambda conn: threading.Thread(target=self._tcp_one, args=(conn,),
                                                  daemon=True).start())

    def _tcp_one(self, conn):
        with conn:
            conn.settimeout(5.0)
            try:
                while not self.stopping.is_set():
                    packet = _read_tcp_message(conn)
                    if packet is None:
                        return
                    q = parse_question(packet)
                    if q is not None and self.should_drop(*q):
                        continue
                    if q is not None and self.should_garble(*q):
                        reply = garbled_reply(packet)
                        conn.sendall(struct.pack(">H", len(reply)) + reply)
                        continue
                    with socket.create_connection(self.upstream, timeout=2.0) as s:
                        s.sendall(struct.pack(">H", len(packet)) + packet)
                        reply = _read_tcp_message(s)
                    if reply is not None:
                        conn.sendall(struct.pack(">H", len(reply)) + reply)
            except OSError:
                return

    def close(self):
        self.stopping.set()
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=2.0)


def _has_edns(packet):
    return len(packet) >= 12 and struct.unpack(">H", packet[10:12])[0] > 0


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_tcp_message(sock):
    head = _read_exact(sock, 2)
    if head is None:
        return None
    return _read_exact(sock, struct.unpack(">H", head)[0])


class DnsServer:
    """nsd serving `zones` ({zone name: [rr(...) lines]}) on 127.0.0.1:port."""

    def __init__(self, zones, drop=(), garble=()):
        self.zones = zones

        # Each entry: (name, None) selects every type, (name, "TXT") only that type.
        def keys(pairs):
            return {(n.rstrip(".").lower().encode("utf-8", "surrogateescape")
                     if isinstance(n, str) else n.rstrip(b".").lower(),
                     TYPE_CODES[t] if t else None) for n, t in pairs}
        self.drop = keys(drop)
        self.garble = keys(garble)
        self.dir = None
        self.proc = None
        self.relay = None
        self.port = None

    @property
    def address(self):
        return "127.0.0.1:%d" % (self.relay.port if self.relay else self.port)

    def _should_drop(self, name, qtype):
        return (name, None) in self.drop or (name, qtype) in self.drop

    def _should_garble(self, name, qtype):
        return (name, None) in self.garble or (name, qtype) in self.garble

    def _write(self):
        zone_conf = []
        for i, (zone, records) in enumerate(sorted(self.zones.items())):
            origin = name_text(zone)
            fname = "zone%d.zone" % i
            lines = ["$TTL 300",
                     "%s IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60" % origin,
                     "%s IN NS ns.test." % origin]
            if zone in (".", ""):
                lines.append("ns.test. IN A 127.0.0.1")
            lines += records
            with open(os.path.join(self.dir, fname), "w", encoding="ascii") as f:
                f.write("\n".join(lines) + "\n")
            zone_conf.append('zone:\n  name: "%s"\n  zonefile: "%s"\n' % (origin, fname))
        conf = f"""server:
  ip-address: 127.0.0.1@{self.port}
  port: {self.port}
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "{self.dir}"
  database: ""
  pidfile: "{self.dir}/nsd.pid"
  xfrdfile: "{self.dir}/xfrd.state"
  xfrdir: "{self.dir}"
  zonelistfile: "{self.dir}/zone.list"
  logfile: "{self.dir}/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
  minimal-responses: no
remote-control:
  control-enable: no
""" + "".join(zone_conf)
        path = os.path.join(self.dir, "nsd.conf")
        with open(path, "w", encoding="ascii") as f:
            f.write(conf)
        return path

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="digue-nsd-")
        self.port = free_port()
        conf = self._write()
        check = subprocess.run([NSD + "-checkconf", conf], capture_output=True, text=True)
        if check.returncode != 0 and os.path.exists(NSD + "-checkconf"):
            raise RuntimeError("nsd-checkconf: " + check.stdout + check.stderr)
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError("nsd did not start:\n" + log)
            time.sleep(0.02)
        if self.drop or self.garble:
            try:
                self.relay = _DropRelay(self.port, self._should_drop, self._should_garble)
            except BaseException:
                # No __exit__ runs when __enter__ raises: end nsd here.
                self.stop()
                raise
        return self

    def _answers(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.1)
            try:
                s.sendto(make_query(".", "NS"), ("127.0.0.1", self.port))
                s.recv(4096)
                return True
            except OSError:
                return False

    def log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def stop(self):
        if self.relay:
            self.relay.close()
            self.relay = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

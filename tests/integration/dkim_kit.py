"""dkim_kit.py - the DKIM interoperability kit.

Keys and their DKIM key records, the message corpus of tests/data/dkim/,
and three independent DKIM implementations ("peers") that sign and verify
messages in batches, every DNS lookup going to the test's loopback
DnsServer (never to the real DNS):

  Dkimpy    python3-dkim (dkimpy), in-process; key records fetched with
            dnspython from the loopback server
  OpenDkim  the real opendkim milter: private instances on unix sockets
            in the test's temp dir, driven by tests/tools/miltc (the MTA
            side of the milter protocol, as Postfix speaks it); its
            libunbound forwards every query to the loopback server
  Mailauth  postalsys/mailauth under node (peers/mailauth_peer.js), one
            node process per batch; its resolver asks the loopback server

    import dkim_kit as K
    dns = H.DnsServer().start()
    rsa = K.make_key("rsa2048", "example.com", "rsa1")
    ed = K.make_key("ed25519", "example.com", "ed1")
    K.publish(dns, rsa, ed)
    peers = K.all_peers(dns)                 # {"dkimpy": ..., ...}
    signed = peers["opendkim"].sign_many([(msg, [rsa], "relaxed/relaxed")])
    for peer in peers.values():
        results = peer.verify_many(signed)   # [[SigResult, ...], ...]

A signed message is the input with the new DKIM-Signature header fields
on top, in the order of the keys given; line ends follow the input's
(an LF-only input stays LF-only).  verify_many() returns, per message,
one SigResult per DKIM-Signature header field (top down), with the
domain/selector/algorithm/b= the peer reported and its result, normalised
to the RFC 8601 words: pass fail neutral policy permerror temperror.
See peers/README.md for each peer's version and limits.
"""

import base64
import collections
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess

import dns.exception as _dnsexc
import dns.resolver as _dnsresolver

import harness as H

HERE = H.HERE
REPO = H.REPO
DATA = os.path.join(REPO, "tests", "data", "dkim")
MESSAGES = os.path.join(DATA, "messages")
PEERS_DIR = os.path.join(HERE, "peers")
NODE_PREFIX = os.environ.get("AUTHGATE_TEST_NODE") or os.path.join(
    H.CACHE, "node")
MAILAUTH_VERSION = "4.13.3"          # keep in step with peers/setup-node.sh
CANONS = ("simple/simple", "relaxed/relaxed", "relaxed/simple",
          "simple/relaxed")
KINDS = {"rsa2048": ("rsa", 2048), "rsa1024": ("rsa", 1024),
         "ed25519": ("ed25519", 256)}
RESULTS = ("pass", "fail", "neutral", "policy", "permerror", "temperror",
           "none")
# PKCS#8 DER of an Ed25519 private key = this prefix + the 32-byte seed
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
# SubjectPublicKeyInfo DER of an Ed25519 public key = prefix + 32 bytes
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class PeerError(RuntimeError):
    """A peer could not do what was asked (not a DKIM result)."""


class Unsupported(PeerError):
    """The peer cannot do this at all (reason says why, with its version)."""


# ---------------------------------------------------------------------------
# small helpers


def _run(argv, data=None, timeout=120, check=True, env=None):
    r = subprocess.run([str(a) for a in argv], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, check=False)
    if check and r.returncode:
        raise PeerError("%s: exit %d: %s" % (
            " ".join(str(a) for a in argv[:3]), r.returncode,
            r.stderr.decode(errors="replace")[-2000:]))
    return r


_workdirs = {}


def workdir(name):
    """A fresh directory NAME<n> in the current test's temp dir."""
    base = H.test_tmpdir()
    n = _workdirs.get((base, name), 0) + 1
    while os.path.exists(os.path.join(base, "%s%d" % (name, n))):
        n += 1
    _workdirs[(base, name)] = n
    path = os.path.join(base, "%s%d" % (name, n))
    os.makedirs(path)
    os.chmod(path, 0o755)
    return path


def eol_of(msg):
    """b"\\n" when the first line ends in a bare LF, else b"\\r\\n"."""
    i = msg.find(b"\n")
    return b"\n" if i >= 0 and (i == 0 or msg[i - 1:i] != b"\r") \
        else b"\r\n"


def split_message(msg):
    """-> (fields, separator, body): fields are the raw header fields
    (continuation lines and line ends included), separator the empty line
    ending the header (b"" when there is none)."""
    lines = msg.splitlines(keepends=True)
    fields, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line in (b"\r\n", b"\n"):
            return fields, line, b"".join(lines[i + 1:])
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
        i += 1
    return fields, b"", b""


def join_message(fields, sep, body):
    return b"".join(fields) + sep + body


def field_name(field):
    return field.split(b":", 1)[0].strip().decode("latin-1")


def field_value(field):
    """Value of a raw header field, unfolded, surrounding WSP removed."""
    value = field.split(b":", 1)[1] if b":" in field else b""
    return re.sub(rb"\r?\n(?=[ \t])", b"", value).strip().decode(
        "utf-8", errors="replace")


def headers(msg, name=None):
    """[(name, unfolded value)] of msg, top down (only NAME if given)."""
    out = []
    for f in split_message(msg)[0]:
        n = field_name(f)
        if name is None or n.lower() == name.lower():
            out.append((n, field_value(f)))
    return out


def parse_tags(value):
    """DKIM tag=value list -> dict (b and bh without whitespace)."""
    tags = {}
    for part in value.split(";"):
        if "=" not in part:
            continue
        k, v = part.split("=", 1)
        k = k.strip()
        v = v.strip()
        if k in ("b", "bh", "p"):
            v = re.sub(r"\s+", "", v)
        else:
            v = re.sub(r"\s+", " ", v)
        tags[k] = v
    return tags


def signatures(msg):
    """Tags of every DKIM-Signature header field of msg, top down."""
    return [parse_tags(v) for _, v in headers(msg, "DKIM-Signature")]


def delivered(sink_message):
    """The message as the MTA delivered it: a SinkMessage's raw bytes
    without the sink's own X-Sink-* lines."""
    raw = sink_message.raw
    while raw.startswith(b"X-Sink-"):
        raw = raw.split(b"\r\n", 1)[1]
    return raw


# ---------------------------------------------------------------------------
# message changes (negative controls)


def _flip(c):
    if 0x61 <= c <= 0x7a:
        return c - 0x20 if c != 0x7a else 0x61
    if 0x41 <= c <= 0x5a:
        return c + 0x20 if c != 0x5a else 0x41
    return 0x30 + (c - 0x30 + 1) % 10


def tamper_body(msg):
    """Change one body byte in a way no canonicalization undoes: the first
    letter or digit changes case/value; a body without any gets an X."""
    fields, sep, body = split_message(msg)
    m = re.search(rb"[A-Za-z0-9]", body)
    if m:
        i = m.start()
        body = body[:i] + bytes([_flip(body[i])]) + body[i + 1:]
    else:
        body = b"X" + eol_of(msg) + body
    return join_message(fields, sep or eol_of(msg), body)


def tamper_header(msg, name="Subject"):
    """Change one letter in the value of the (first) NAME header field."""
    fields, sep, body = split_message(msg)
    for i, f in enumerate(fields):
        if field_name(f).lower() == name.lower():
            colon = f.index(b":") + 1
            m = re.search(rb"[A-Za-z0-9]", f[colon:])
            j = colon + m.start()
            fields[i] = f[:j] + bytes([_flip(f[j])]) + f[j + 1:]
            return join_message(fields, sep, body)
    raise ValueError("no %s header" % name)


# ---------------------------------------------------------------------------
# Authentication-Results


ARResult = collections.namedtuple("ARResult",
                                  "method result reason props comment")


def _ar_tokens(text):
    """Split an A-R value on top-level ';', dropping (comments) but keeping
    them per part; quoted strings kept whole."""
    parts, cur, comments, depth, i, q = [], "", [], 0, 0, False
    com = ""
    while i < len(text):
        c = text[i]
        if q:
            cur += c
            if c == "\\" and i + 1 < len(text):
                cur += text[i + 1]
                i += 1
            elif c == '"':
                q = False
        elif depth:
            if c == "\\" and i + 1 < len(text):
                com += text[i:i + 2]
                i += 1
            elif c == "(":
                depth += 1
                com += c
            elif c == ")":
                depth -= 1
                if depth:
                    com += c
                else:
                    comments.append(com)
                    com = ""
                    cur += " "
            else:
                com += c
        elif c == '"':
            q = True
            cur += c
        elif c == "(":
            depth = 1
        elif c == ";":
            parts.append((cur.strip(), comments))
            cur, comments = "", []
        else:
            cur += c
        i += 1
    parts.append((cur.strip(), comments))
    return parts


def parse_ar(value):
    """Authentication-Results value -> (authserv_id, [ARResult]).
    props: {"header.d": "example.com", ...}; reason without quotes."""
    value = re.sub(r"\r?\n[ \t]+", " ", value)
    parts = _ar_tokens(value)
    authserv = parts[0][0].split()[0] if parts[0][0] else ""
    out = []
    for text, comments in parts[1:]:
        m = re.match(r'\s*([\w.-]+)\s*=\s*([\w-]+)(.*)$', text, re.S)
        if not m:
            continue
        rest = m.group(3)
        reason = None
        r = re.search(r'\breason\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)', rest)
        if r:
            reason = r.group(1)
            if reason.startswith('"'):
                reason = re.sub(r"\\(.)", r"\1", reason[1:-1])
            rest = rest[:r.start()] + rest[r.end():]
        props = dict(re.findall(
            r'([\w-]+\.[\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)', rest))
        props = {k: v[1:-1] if v.startswith('"') else v
                 for k, v in props.items()}
        out.append(ARResult(m.group(1).lower(), m.group(2).lower(), reason,
                            props, "; ".join(comments)))
    return authserv, out


def ar_dkim(value):
    """The dkim= results of an A-R value as SigResults (peer "ar")."""
    out = []
    for r in parse_ar(value)[1]:
        if r.method != "dkim":
            continue
        p = r.props
        out.append(SigResult("ar", p.get("header.d", ""),
                             p.get("header.s", ""), p.get("header.a", ""),
                             r.result, p.get("header.b", ""),
                             r.reason or r.comment or ""))
    return out


# ---------------------------------------------------------------------------
# results


class SigResult(collections.namedtuple(
        "SigResult", "peer domain selector algorithm result b detail")):
    """One verifier's verdict on one DKIM-Signature.  b: the b= value (or
    the prefix the verifier reported, e.g. 8 characters in an A-R)."""

    @property
    def b8(self):
        return self.b[:8]

    def key(self):
        return (self.domain.lower(), self.selector.lower())

    def __str__(self):
        return "%s d=%s s=%s a=%s b=%s %s%s" % (
            self.peer, self.domain, self.selector, self.algorithm, self.b8,
            self.result, " (%s)" % self.detail if self.detail else "")


def find(results, domain, selector, b=None):
    """The result for (domain, selector[, b= prefix]) or None."""
    for r in results:
        if r.key() == (domain.lower(), selector.lower()) and (
                b is None or not r.b or b.startswith(r.b) or
                r.b.startswith(b)):
            return r
    return None


# ---------------------------------------------------------------------------
# keys and key records


class Key:
    """A DKIM signing key: PEM PKCS#8 private key, its public key and key
    record.  kind: rsa2048, rsa1024, ed25519 (or rsaNNNN for loaded keys)."""

    def __init__(self, kind, domain, selector, pem):
        self.kind, self.domain, self.selector = kind, domain, selector
        self.pem = pem
        der = _run(["openssl", "pkey", "-pubout", "-outform", "DER"],
                   data=pem).stdout
        if der.startswith(ED25519_SPKI_PREFIX) and len(der) == 44:
            self.k, self.bits = "ed25519", 256
            self.public = base64.b64encode(der[-32:]).decode()
            self.algorithm = "ed25519-sha256"
        else:
            self.k = "rsa"
            text = _run(["openssl", "pkey", "-pubin", "-inform", "DER",
                         "-noout", "-text"], data=der).stdout.decode()
            self.bits = int(re.search(r"\((\d+) bit", text).group(1))
            self.public = base64.b64encode(der).decode()
            self.algorithm = "rsa-sha256"
        self.path = None

    def __repr__(self):
        return "<Key %s %s>" % (self.kind, self.name)

    @property
    def name(self):
        """The key record's owner name: SELECTOR._domainkey.DOMAIN."""
        return "%s._domainkey.%s." % (self.selector, self.domain.rstrip("."))

    @property
    def txt(self):
        """The key record (RFC 6376 3.6.1; Ed25519: RFC 8463 4)."""
        return "v=DKIM1; k=%s; p=%s" % (self.k, self.public)

    @property
    def seed(self):
        """Ed25519: the raw 32-byte private key (RFC 8032 seed)."""
        der = _pem_der(self.pem)
        if not der.startswith(ED25519_PKCS8_PREFIX):
            raise ValueError("not an Ed25519 PKCS#8 key")
        return der[-32:]

    def dkimpy_private(self):
        """The private key as dkimpy.sign() wants it."""
        return base64.b64encode(self.seed) if self.k == "ed25519" \
            else self.pem

    def write(self, directory, owner=None, mode=0o600, name=None):
        """Write the PEM to DIRECTORY/NAME (default DOMAIN.SELECTOR.pem),
        mode 0600, owned by OWNER (user name) if given; -> path."""
        path = os.path.join(directory, name or "%s.%s.pem" % (
            self.domain.rstrip("."), self.selector))
        with open(path, "wb") as f:
            f.write(self.pem)
        os.chmod(path, mode)
        if owner:
            shutil.chown(path, owner)
        self.path = path
        return path


def _pem_der(pem):
    body = re.search(rb"-----BEGIN [A-Z ]+-----(.*?)-----END", pem, re.S)
    return base64.b64decode(b"".join(body.group(1).split()))


_key_cache = {}


def make_key(kind, domain="example.com", selector=None):
    """A new key (openssl genpkey), cached per (kind, domain, selector) for
    the rest of the run; kind: rsa2048, rsa1024 or ed25519."""
    selector = selector or kind
    ck = (kind, domain.lower(), selector)
    if ck not in _key_cache:
        k, bits = KINDS[kind]
        argv = ["openssl", "genpkey", "-algorithm"]
        argv += ["RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits] \
            if k == "rsa" else ["ED25519"]
        pem = _run(argv).stdout
        if b"BEGIN PRIVATE KEY" not in pem:
            raise PeerError("openssl genpkey gave no PKCS#8 PEM")
        _key_cache[ck] = Key(kind, domain, selector, pem)
    return _key_cache[ck]


def load_key(source, domain, selector):
    """A Key from a PEM (PKCS#1 or PKCS#8) or a base64 Ed25519 seed (as in
    RFC 8463 A.1 and dkimpy's test data); source: path or bytes."""
    data = source
    if not isinstance(source, bytes):
        with open(source, "rb") as f:
            data = f.read()
    if b"-----BEGIN" in data:
        pem = _run(["openssl", "pkey"], data=data).stdout
    else:
        seed = base64.b64decode(data.strip())
        if len(seed) != 32:
            raise ValueError("neither PEM nor a 32-byte Ed25519 seed")
        der = ED25519_PKCS8_PREFIX + seed
        pem = _run(["openssl", "pkey", "-inform", "DER"], data=der).stdout
    key = Key("", domain, selector, pem)
    key.kind = "ed25519" if key.k == "ed25519" else "rsa%d" % key.bits
    return key


def publish(dns, *keys, ttl=60):
    """Put each key's record into the DnsServer's zone (replacing any)."""
    for k in keys:
        dns.set(k.name, "TXT", [k.txt], ttl=ttl)


def read_zone(path):
    """TXT records of a zone file (NAME [TTL] IN TXT "s1" ["s2" ...] lines;
    ';' comments) or of a mailauth-style JSON ({name: {"TXT": [[s, ...]]}})
    -> [(name, [strings])]."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    if path.endswith(".json"):
        for name, types in json.loads(text).items():
            for rec in types.get("TXT", []):
                out.append((name, list(rec)))
        return out
    for line in text.splitlines():
        m = re.match(r"\s*([^\s;]+)\s+(?:\d+\s+)?IN\s+TXT\s+(.*)$", line)
        if m:
            strings = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
            out.append((m.group(1), [re.sub(r"\\(.)", r"\1", s)
                                     for s in strings]))
    return out


def publish_zone(dns, path, ttl=60):
    """Publish every TXT record of a zone file (see read_zone); records of
    one name replace what the server had for it."""
    by_name = collections.OrderedDict()
    for name, strings in read_zone(path):
        by_name.setdefault(name, []).append(strings)
    for name, recs in by_name.items():
        dns.set(name, "TXT", recs, ttl=ttl)
    return list(by_name)


# ---------------------------------------------------------------------------
# the fixed data: corpus, vectors


CorpusMessage = collections.namedtuple(
    "CorpusMessage", "name path data lf_only foreign")

# foreign signatures already in a corpus message: [(d, s, expected result)]
FOREIGN = {
    "with-dkim-signature.eml": [("lists.example.org", "list", "pass")],
    "with-broken-dkim-signature.eml": [("lists.example.org", "list",
                                        "fail")],
}


def corpus(names=None):
    """The messages of tests/data/dkim/messages, by name.  Every one has
    From: ...@example.com (the signing domain of the tests)."""
    out = []
    for fn in sorted(os.listdir(MESSAGES)):
        if not fn.endswith(".eml") or (names and fn not in names and
                                       fn[:-4] not in names):
            continue
        path = os.path.join(MESSAGES, fn)
        with open(path, "rb") as f:
            data = f.read()
        out.append(CorpusMessage(fn, path, data, eol_of(data) == b"\n",
                                 FOREIGN.get(fn, [])))
    return out


Vector = collections.namedtuple("Vector", "name path data expect source")


def vectors():
    """Messages signed elsewhere (RFC 8463, dkimpy's, Exim's, mailauth's
    test data) with the results every verifier must give; see
    tests/data/dkim/vectors.json."""
    with open(os.path.join(DATA, "vectors.json")) as f:
        spec = json.load(f)
    out = []
    for v in spec["vectors"]:
        path = os.path.join(DATA, v["file"])
        with open(path, "rb") as f:
            data = f.read()
        out.append(Vector(v["name"], path, data,
                          [(s["d"], s["s"], s["a"], s["result"])
                           for s in v["signatures"]], v["source"]))
    return out


def publish_fixtures(dns):
    """Key records of the fixed data: the foreign signatures of the corpus
    and every vector (tests/data/dkim/zone.txt and the vectors' own zone
    files, as listed in vectors.json)."""
    with open(os.path.join(DATA, "vectors.json")) as f:
        spec = json.load(f)
    names = publish_zone(dns, os.path.join(DATA, "zone.txt"))
    for z in spec["zones"]:
        names += publish_zone(dns, os.path.join(DATA, z))
    return names


def rfc8463_keys():
    """The RFC 8463 A.1 keys (Ed25519 s=brisbane, RSA-1024 s=test) for
    d=football.example.com, as Keys (PEM PKCS#8)."""
    d = os.path.join(DATA, "vectors", "rfc8463")
    return (load_key(os.path.join(d, "ed25519-brisbane.private.b64"),
                     "football.example.com", "brisbane"),
            load_key(os.path.join(d, "rsa-test.private.pem"),
                     "football.example.com", "test"))


# ---------------------------------------------------------------------------
# peers


def _port(dns):
    return dns.port if hasattr(dns, "port") else int(dns)


_opendkim_version = None


def opendkim_version():
    """`opendkim -V`'s version (cached), or None when not installed."""
    global _opendkim_version
    if _opendkim_version is None:
        if not shutil.which("opendkim"):
            return None
        v = _run(["opendkim", "-V"]).stdout.decode()
        _opendkim_version = re.search(r"v([\d.]+\S*)", v).group(1)
    return _opendkim_version


def limitation(peer, algorithms, canon):
    """Why PEER cannot make good signatures with keys of these algorithms
    (all in one signing pass) in canonicalization CANON; None when it can.
    Each entry is backed by a test in test_dkim_peers.py."""
    if peer == "opendkim":
        v = opendkim_version()
        if len(set(algorithms)) > 1:
            return ("OpenDKIM %s signs every key with its one global "
                    "SignatureAlgorithm: no RSA + Ed25519 dual signing (an "
                    "RSA key under ed25519-sha256 gives an a=ed25519-sha256 "
                    "signature that fails)" % v)
        if "ed25519-sha256" in algorithms and canon.startswith("simple/"):
            return ("OpenDKIM %s: its ed25519-sha256 signatures with simple "
                    "header canonicalization never verify, not even with "
                    "OpenDKIM itself (a known OpenDKIM bug; its develop "
                    "branch's Ed25519 tests say to use relaxed)" % v)
    return None


class Peer:
    """Common interface.  sign_many(jobs): jobs [(msg, [keys], canon)] ->
    [bytes or PeerError]; verify_many(msgs) -> [[SigResult]]."""

    name = "?"
    version = "?"

    def unsupported(self, keys, canon):
        """None when the peer can sign with these keys (all in one
        signing pass) and canonicalization; else the reason."""
        return limitation(self.name, [k.algorithm for k in keys], canon)

    def sign(self, msg, keys, canon="relaxed/relaxed"):
        out = self.sign_many([(msg, keys, canon)])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def verify(self, msg):
        return self.verify_many([msg])[0]

    def __repr__(self):
        return "<%s %s>" % (self.name, self.version)


class Dkimpy(Peer):
    """python3-dkim (dkimpy) in-process; keys fetched from the loopback
    DNS server with dnspython (no static map: the record is read as the
    server serves it, split into 255-byte strings)."""

    name = "dkimpy"

    def __init__(self, dns, minkey=1024):
        import importlib.metadata
        import dkim
        self.dkim = dkim
        try:
            self.version = importlib.metadata.version("dkimpy")
        except importlib.metadata.PackageNotFoundError:
            self.version = getattr(dkim, "__version__", "?")
        self.minkey = minkey
        res = _dnsresolver.Resolver(configure=False)
        res.nameservers = ["127.0.0.1"]
        res.port = _port(dns)
        self.resolver = res

    def dnsfunc(self, name, timeout=5):
        """dkimpy's dnsfunc: the TXT record of name (strings joined), None
        when there is none; DNS errors raise (dkimpy: temperror)."""
        if isinstance(name, bytes):
            name = name.decode("ascii")
        try:
            ans = self.resolver.resolve(name, "TXT", lifetime=timeout,
                                        raise_on_no_answer=False)
        except _dnsresolver.NXDOMAIN:
            return None
        for rr in ans.rrset or []:
            return b"".join(rr.strings)
        return None

    def sign_many(self, jobs):
        out = []
        for msg, keys, canon in jobs:
            try:
                out.append(self._sign(msg, keys, canon))
            except Exception as e:               # noqa: BLE001
                out.append(PeerError("dkimpy: %s: %s" % (
                    type(e).__name__, e)))
        return out

    def _sign(self, msg, keys, canon):
        hc, bc = (c.encode() for c in canon.split("/"))
        eol = eol_of(msg)
        sigs = []
        for k in keys:
            sigs.append(self.dkim.sign(
                msg, k.selector.encode(), k.domain.encode(),
                k.dkimpy_private(), canonicalize=(hc, bc),
                signature_algorithm=k.algorithm.encode(), linesep=eol))
        return b"".join(sigs) + msg

    def verify_many(self, msgs):
        return [self._verify(m) for m in msgs]

    def _verify(self, msg):
        log = _ListLog()
        logger = logging.getLogger("dkim_kit.dkimpy.%d" % id(log))
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(log)
        try:
            d = self.dkim.DKIM(msg, logger=logger, minkey=self.minkey)
            out = []
            for i, tags in enumerate(signatures(msg)):
                log.lines.clear()
                try:
                    ok = d.verify(idx=i, dnsfunc=self.dnsfunc)
                    result = "pass" if ok else "fail"
                except _dnsexc.DNSException as e:
                    result, log.lines[:] = "temperror", [str(e)]
                except self.dkim.DKIMException as e:
                    # dkimpy raises for a body hash mismatch: that is a
                    # failed verification (RFC 6376 6.1.3), not an error
                    result = "fail" if "body hash mismatch" in str(e) \
                        else "permerror"
                    log.lines[:] = [str(e)]
                detail = "" if result == "pass" else \
                    (log.lines[-1] if log.lines else "")
                if result == "fail" and detail.startswith(
                        "missing public key"):
                    result = "permerror"          # no key record
                out.append(SigResult(self.name, tags.get("d", ""),
                                     tags.get("s", ""), tags.get("a", ""),
                                     result, tags.get("b", ""), detail))
            return out
        finally:
            logger.removeHandler(log)


class _ListLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())


def miltc_path():
    """tests/tools/miltc: $MILTC, the build tree's ($AUTHGATE_BUILDDIR, as
    `make check` sets it, else <repo>/build), or built with cc into
    CACHE/bin/miltc-<source hash> once."""
    if os.environ.get("MILTC"):
        return os.environ["MILTC"]
    src = os.path.join(REPO, "tests", "tools", "miltc.c")
    for bdir in (os.environ.get("AUTHGATE_BUILDDIR"),
                 os.path.join(REPO, "build")):
        built = os.path.join(bdir or "/nonexistent", "tests", "tools",
                             "miltc")
        if os.access(built, os.X_OK) and \
                os.path.getmtime(built) >= os.path.getmtime(src):
            return built
    with open(src, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    target = os.path.join(H.CACHE, "bin", "miltc-" + tag)
    if not os.access(target, os.X_OK):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(os.path.join(H.CACHE, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.access(target, os.X_OK):
                _run(["cc", "-O2", "-pthread", "-o", target + ".tmp", src])
                os.rename(target + ".tmp", target)
    return target


_UNESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def miltc_unescape(text):
    """Undo miltc's C escapes (\\n \\r \\t \\\\ \\xHH) -> bytes."""
    out, i = bytearray(), 0
    raw = text.encode("latin-1", errors="replace") if isinstance(
        text, str) else text
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"\\" and i + 1 < len(raw):
            n = chr(raw[i + 1])
            if n == "x":
                out.append(int(raw[i + 2:i + 4], 16))
                i += 4
                continue
            out += _UNESC.get(n, n).encode()
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def apply_milter_edits(msg, miltc_output):
    """Apply what a milter asked for (miltc's insert-header/add-header
    lines) to msg, as an MTA would: -> (new message, [unhandled lines]).
    With SMFIP_HDR_LEADSPC negotiated the value is used as sent (the
    milter supplies the space after the colon), else one space is put
    after the colon; LF in a value becomes the message's line end."""
    eol = eol_of(msg)
    fields, sep, body = split_message(msg)
    lead = False
    other = []
    for line in miltc_output.splitlines():
        m = re.match(r"negotiated: .*protocol=0x([0-9a-fA-F]+)", line)
        if m:
            lead = bool(int(m.group(1), 16) & 0x100000)
            continue
        m = re.match(r"(insert-header: (\d+)|add-header:) ([^:]+): (.*)$",
                     line)
        if m:
            value = miltc_unescape(m.group(4)).replace(b"\r\n", b"\n")
            value = value.replace(b"\n", eol)
            field = m.group(3).encode() + (b":" if lead else b": ") + \
                value + eol
            if m.group(2) is not None:
                fields.insert(min(int(m.group(2)), len(fields)), field)
            else:
                fields.append(field)
        elif re.match(r"(change-header|delete-header|replace-body|"
                      r"add-rcpt|delete-rcpt|change-from|quarantine)", line):
            other.append(line)
    return join_message(fields, sep or eol, body), other


class OpenDkim(Peer):
    """The opendkim milter, private instances (one verifier; one signer per
    key set and canonicalization, since Canonicalization and
    SignatureAlgorithm are global settings), each on a unix socket in the
    test's temp dir, stopped by PID at teardown (SIGTERM, then SIGKILL
    after 0.1 s: libmilter takes ~6 s to exit otherwise).  Messages go
    through tests/tools/miltc one at a time (see _map)."""

    name = "opendkim"
    AUTHSERV = "opendkim.test"
    VERIFY_CLIENT = "198.51.100.201"      # external: verify
    SIGN_CLIENT = "127.0.0.1"             # InternalHosts: sign

    def __init__(self, dns, minkey=1024, directory=None):
        if not shutil.which("opendkim"):
            raise Unsupported("opendkim not installed (Debian: opendkim)")
        self.dns_port = _port(dns)
        self.minkey = minkey
        self.dir = directory or workdir("opendkim")
        self.version = opendkim_version()
        self.package = _dpkg_version("opendkim")
        self.features = _run(["opendkim", "-V"]).stdout.decode()
        self.miltc = miltc_path()
        self.instances = {}
        self.n = 0
        self.resolver_conf = os.path.join(self.dir, "unbound.conf")
        with open(self.resolver_conf, "w") as f:
            # libunbound: every query forwarded to the loopback server
            f.write("server:\n  do-not-query-localhost: no\n"
                    "  verbosity: 0\n  qname-minimisation: no\n"
                    "forward-zone:\n  name: \".\"\n"
                    "  forward-addr: 127.0.0.1@%d\n" % self.dns_port)

    def _start(self, tag, lines):
        sock = os.path.join(self.dir, tag + ".sock")
        conf = os.path.join(self.dir, tag + ".conf")
        base = ["Socket local:%s" % sock, "Background no", "Syslog no",
                "AuthservID %s" % self.AUTHSERV,
                "ResolverConfiguration %s" % self.resolver_conf,
                "DNSTimeout 5", "MinimumKeyBits %d" % self.minkey,
                "SoftwareHeader no", "UMask 007",
                "TemporaryDirectory %s" % self.dir]
        with open(conf, "w") as f:
            f.write("\n".join(base + lines) + "\n")
        d = H.Daemon(["opendkim", "-f", "-x", conf], ready_path=sock,
                     name="opendkim-" + tag, logdir=self.dir, grace=0.1)
        d.start()
        return d, sock

    def _verifier(self):
        if "verify" not in self.instances:
            self.instances["verify"] = self._start(
                "verify", ["Mode v", "AlwaysAddARHeader yes",
                           "On-Default accept", "On-DNSError accept",
                           "On-BadSignature accept"])
        return self.instances["verify"][1]

    def _signer(self, keys, canon):
        ident = (tuple((k.domain, k.selector, k.kind) for k in keys), canon)
        if ident not in self.instances:
            why = self.unsupported(keys, canon)
            if why:
                raise Unsupported(why)
            self.n += 1
            tag = "sign%d" % self.n
            kt, st = [], []
            for i, k in enumerate(keys):
                path = k.write(self.dir, name="%s-key%d.pem" % (tag, i))
                kt.append("key%d %s:%s:%s" % (i, k.domain, k.selector, path))
                st.append("* key%d" % i)
            for name, rows in (("keytable", kt), ("signingtable", st)):
                with open(os.path.join(self.dir, "%s.%s" % (tag, name)),
                          "w") as f:
                    f.write("\n".join(rows) + "\n")
            self.instances[ident] = self._start(tag, [
                "Mode s", "Canonicalization %s" % canon,
                "SignatureAlgorithm %s" % keys[0].algorithm,
                "KeyTable file:%s/%s.keytable" % (self.dir, tag),
                "SigningTable refile:%s/%s.signingtable" % (self.dir, tag),
                "MultipleSignatures yes", "InternalHosts 127.0.0.1",
                "On-Default tempfail",
                # 2.11 refuses a key file below a world-writable directory
                # (/tmp); the files are 0600 in a 0755 dir of ours.
                "RequireSafeKeys no"])
        return self.instances[ident][1]

    def _miltc(self, sock, msg, client):
        self.n += 1
        path = os.path.join(self.dir, "msg-%d.eml" % self.n)
        with open(path, "wb") as f:
            f.write(msg)
        r = _run([self.miltc, "--client-ip", client, "--helo",
                  "client.test.example", "--mail-from", "alice@example.com",
                  "--rcpt", "bob@example.net", "--timeout", "20",
                  "unix:" + sock, path], check=False, timeout=60)
        out = r.stdout.decode("latin-1")
        if r.returncode:
            raise PeerError("miltc: exit %d: %s %s" % (
                r.returncode, out[-500:], r.stderr.decode()[-500:]))
        return out

    def _map(self, fn, items):
        # One message at a time: with ResolverConfiguration, opendkim 2.11
        # parses the unbound config for every new connection, and
        # unbound's (flex) parser is not thread-safe: concurrent
        # connections gave "unbound.conf:1: error: stray ':'", "fatal flex
        # scanner internal error" and segfaults in libunbound.so.8.
        return [fn(x) for x in items]

    def sign_many(self, jobs):
        def one(job):
            msg, keys, canon = job
            try:
                out = self._miltc(self._signer(keys, canon), msg,
                                  self.SIGN_CLIENT)
                res = re.search(r"^result: (\S+)(.*)$", out, re.M)
                if not res or res.group(1) not in ("accept", "continue"):
                    raise PeerError("opendkim did not sign: %s"
                                    % (res.group(0) if res else out[-300:]))
                signed, other = apply_milter_edits(msg, out)
                if other:
                    raise PeerError("unexpected milter edits: %s" % other)
                if len(signatures(signed)) != len(signatures(msg)) + \
                        len(keys):
                    raise PeerError("opendkim added no signature: %s"
                                    % out[-500:])
                return signed
            except PeerError as e:
                return e
        return self._map(one, jobs)

    def verify_many(self, msgs):
        sock = self._verifier()

        def one(msg):
            out = self._miltc(sock, msg, self.VERIFY_CLIENT)
            signed, _ = apply_milter_edits(b"X-Kit: 1\r\n\r\n", out)
            ar = [v for n, v in headers(signed, "Authentication-Results")
                  if v.startswith(self.AUTHSERV)]
            found = ar_dkim(ar[0]) if ar else []
            res = []
            for tags in signatures(msg):
                r = find(found, tags.get("d", ""), tags.get("s", ""),
                         tags.get("b", ""))
                if r is None:
                    res.append(SigResult(self.name, tags.get("d", ""),
                                         tags.get("s", ""), tags.get("a", ""),
                                         "none", "", "not in opendkim's A-R: "
                                         + (ar[0] if ar else out[-300:])))
                    continue
                found.remove(r)
                res.append(r._replace(peer=self.name))
            return res
        return self._map(one, msgs)

    def stop(self):
        for d, _ in self.instances.values():
            d.stop()
        self.instances = {}


class OpenDkimStandIn(H.Daemon):
    """An opendkim milter (Mode sv) configured from authgate's settings,
    to put behind Postfix where authgate goes: it checks the MTA side and
    the expectations of test_dkim_interop.py before authgate has DKIM
    (DKIM_INTEROP_MILTER=opendkim).  Understands authserv_id, key_table,
    signing_table, dkim_canonicalization, dkim_min_key_bits,
    internal_hosts; ignores the rest.  OpenDKIM's limits apply (no RSA +
    Ed25519 dual signing, no Ed25519 with simple header canonicalization):
    those tests fail in this mode, which is expected."""

    def __init__(self, settings, dns, tmpdir=None):
        self.dir = tmpdir or workdir("opendkim-standin")
        self.port = H.free_port()
        self.settings = dict(settings)
        st = self.settings
        resolver = os.path.join(self.dir, "unbound.conf")
        with open(resolver, "w") as f:
            f.write("server:\n  do-not-query-localhost: no\n"
                    "  qname-minimisation: no\nforward-zone:\n"
                    "  name: \".\"\n  forward-addr: 127.0.0.1@%d\n"
                    % _port(dns))
        lines = ["Socket inet:%d@127.0.0.1" % self.port, "Mode sv",
                 "Background no", "Syslog no", "SoftwareHeader no",
                 "AuthservID %s" % (st.get("authserv_id") or "standin"),
                 "ResolverConfiguration %s" % resolver, "DNSTimeout 5",
                 "MinimumKeyBits %s" % st.get("dkim_min_key_bits", 1024),
                 "AlwaysAddARHeader yes", "On-Default accept",
                 "On-DNSError accept", "RequireSafeKeys no",
                 "MultipleSignatures yes",
                 "InternalHosts %s" % st.get("internal_hosts",
                                             "127.0.0.0/8"),
                 "Canonicalization %s" % st.get("dkim_canonicalization",
                                                "relaxed/relaxed")]
        if st.get("key_table"):
            algs = set()
            with open(st["key_table"]) as f:
                for row in f:
                    row = row.split("#")[0].split()
                    if len(row) == 2:
                        with open(row[1].split(":", 2)[2], "rb") as kf:
                            algs.add(Key("", "x", "x", kf.read()).algorithm)
            lines += ["KeyTable file:%s" % st["key_table"],
                      "SigningTable %s" % st["signing_table"],
                      "SignatureAlgorithm %s" % (
                          "rsa-sha256" if "rsa-sha256" in algs
                          else "ed25519-sha256")]
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        super().__init__(["opendkim", "-f", "-x", conf],
                         ready_port=self.port, name="opendkim-standin",
                         logdir=self.dir, grace=0.1)

    @property
    def spec(self):
        return H.milter_spec(self.port)


def _dpkg_version(pkg):
    r = _run(["dpkg-query", "-W", "-f=${Version}", pkg], check=False)
    return r.stdout.decode().strip() or "?"


def ensure_mailauth():
    """Path of the installed mailauth module; runs peers/setup-node.sh (npm,
    into the cache dir, under the cache lock) on first use."""
    mod = os.path.join(NODE_PREFIX, "node_modules", "mailauth")

    def have():
        try:
            with open(os.path.join(mod, "package.json")) as f:
                return json.load(f)["version"] == MAILAUTH_VERSION
        except (OSError, ValueError, KeyError):
            return False
    if have():
        return mod
    if not shutil.which("node"):
        raise Unsupported("node not installed")
    os.makedirs(H.CACHE, exist_ok=True)
    with open(os.path.join(H.CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not have():
            env = dict(os.environ, AUTHGATE_TEST_CACHE=H.CACHE)
            r = _run(["sh", os.path.join(PEERS_DIR, "setup-node.sh")],
                     check=False, timeout=600, env=env)
            if r.returncode or not have():
                raise Unsupported(
                    "mailauth %s not installed and setup-node.sh failed: %s"
                    % (MAILAUTH_VERSION, (r.stdout + r.stderr).decode(
                        errors="replace")[-1000:]))
    return mod


class Mailauth(Peer):
    """postalsys/mailauth under node: peers/mailauth_peer.js, one node
    process per batch; key lookups go to the loopback DNS server through
    node's dns.Resolver (mailauth's `resolver` option)."""

    name = "mailauth"

    def __init__(self, dns, minkey=1024, directory=None):
        self.module = ensure_mailauth()
        self.dns_port = _port(dns)
        self.minkey = minkey
        self.dir = directory or workdir("mailauth")
        self.version = MAILAUTH_VERSION
        self.node = _run(["node", "--version"]).stdout.decode().strip()
        self.n = 0

    def _batch(self, jobs):
        self.n += 1
        spec = os.path.join(self.dir, "jobs-%d.json" % self.n)
        H.write_json(spec, {"mailauth": self.module,
                            "dns": "127.0.0.1:%d" % self.dns_port,
                            "jobs": jobs})
        r = _run(["node", os.path.join(PEERS_DIR, "mailauth_peer.js"), spec],
                 check=False, timeout=600)
        if r.returncode:
            raise PeerError("mailauth_peer.js: exit %d: %s" % (
                r.returncode, r.stderr.decode(errors="replace")[-2000:]))
        out = json.loads(r.stdout)
        self.version = out["version"]
        return out["results"]

    def _file(self, data, kind):
        self.n += 1
        path = os.path.join(self.dir, "%s-%d.eml" % (kind, self.n))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def sign_many(self, jobs):
        specs, outs = [], []
        for msg, keys, canon in jobs:
            src = self._file(msg, "in")
            outs.append(src + ".signed")
            ks = []
            for k in keys:
                if not k.path or not os.path.exists(k.path):
                    k.write(self.dir, name="%s.%s.%s.pem" % (
                        k.domain, k.selector, self.n))
                ks.append({"domain": k.domain, "selector": k.selector,
                           "key": k.path, "algorithm": k.algorithm})
            specs.append({"op": "sign", "in": src, "out": outs[-1],
                          "canon": canon, "keys": ks})
        res = self._batch(specs)
        out = []
        for r, path in zip(res, outs):
            if not r.get("ok"):
                out.append(PeerError("mailauth: " + r.get("error", "?")))
                continue
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def verify_many(self, msgs):
        specs = [{"op": "verify", "in": self._file(m, "verify"),
                  "minBits": self.minkey} for m in msgs]
        out = []
        for msg, r in zip(msgs, self._batch(specs)):
            if not r.get("ok"):
                raise PeerError("mailauth verify: " + r.get("error", "?"))
            res = []
            for s in r["signatures"]:
                detail = s.get("comment") or ""
                result = s["result"].lower()
                if result == "neutral" and "body hash did not verify" in \
                        detail:
                    # mailauth says neutral for a body hash mismatch; RFC
                    # 6376 6.1.3 / RFC 8601 2.7.1 make that a fail
                    result, detail = "fail", "mailauth: neutral (%s)" % detail
                res.append(SigResult(self.name, s["domain"], s["selector"],
                                     s["algorithm"], result, s["b"], detail))
            out.append(res)
        return out


PEER_CLASSES = {"dkimpy": Dkimpy, "opendkim": OpenDkim, "mailauth": Mailauth}


def all_peers(dns, names=("dkimpy", "opendkim", "mailauth"), minkey=1024):
    """{name: Peer} for the DnsServer (or port) dns."""
    return {n: PEER_CLASSES[n](dns, minkey=minkey) for n in names}


def versions(peers):
    """One line per peer: name, version and how it runs."""
    lines = []
    for p in peers.values():
        extra = ""
        if isinstance(p, OpenDkim):
            extra = " (Debian %s, miltc %s)" % (p.package, p.miltc)
        elif isinstance(p, Mailauth):
            extra = " (node %s, %s)" % (p.node, p.module)
        elif isinstance(p, Dkimpy):
            extra = " (Debian python3-dkim %s)" % _dpkg_version(
                "python3-dkim")
        lines.append("%s %s%s" % (p.name, p.version, extra))
    return lines


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["versions"]:
        print("usage: dkim_kit.py versions", file=sys.stderr)
        sys.exit(2)
    srv = H.DnsServer().start()
    try:
        print("\n".join(versions(all_peers(srv))))
    finally:
        H.stop_all()

#!/bin/bash
# test_keys.sh - authgate-keys: generate (RSA, Ed25519) and what it writes
# (modes, PEM, the TXT record against `openssl pkey -pubout`), show, and
# check against a DNS server on loopback (tests/integration/dns_server.py):
# every outcome, each with its message. The DNS server is stopped by PID.
. "$(dirname "$0")/lib.sh"
K="$AUTHGATE_BUILDDIR/keys/authgate-keys"
T=$(mktemp -d)
T=$(cd "$T" && pwd -P) # generate prints absolute, symlink-free paths
DNS_PID=""
cleanup() { stop_pid "$DNS_PID"; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/k"
: > "$T/empty.conf"

# strings FILE - the quoted strings of a zone-file TXT record, one a line
strings_of() { grep -o '"[^"]*"' "$1" | tr -d '"'; }
# value FILE - the record's text: its strings joined
value_of() { strings_of "$1" | tr -d '\n'; }
# longest FILE - the length of the longest string
longest() { strings_of "$1" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }'; }
# spki FILE - base64 of the DER SubjectPublicKeyInfo of a private key
spki() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | base64 -w0; }
# rawed FILE - base64 of the raw Ed25519 public key (the DER's last 32 bytes)
rawed() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0; }
# section OUT LABEL - the line after the line LABEL
section() { printf '%s\n' "$1" | sed -n "/^$2/{n;p;q}"; }

# ---- generate: RSA, default size ----------------------------------------
cd "$T/k" || exit 1
out=$("$K" generate --domain example.com --selector rsa1 2>&1); rc=$?
cd - >/dev/null || exit 1
is "generate rsa: exit 0" "$rc" 0
is "generate rsa: key file mode 0600" "$(stat -c %a "$T/k/rsa1.private" 2>&1)" 600
is "generate rsa: record file mode 0644" "$(stat -c %a "$T/k/rsa1.txt" 2>&1)" 644
is "generate rsa: PKCS#8 PEM" "$(head -1 "$T/k/rsa1.private")" "-----BEGIN PRIVATE KEY-----"
like "generate rsa: openssl reads it, 2048 bits by default" \
    "$(openssl pkey -in "$T/k/rsa1.private" -noout -text 2>&1 | head -1)" \
    '^Private-Key: \(2048 bit'
like "generate rsa: record owner, TTL, class, type" "$(cat "$T/k/rsa1.txt")" \
    '^rsa1\._domainkey\.example\.com\. 3600 IN TXT \( "v=DKIM1; k=rsa; p=[^"]*"( "[^"]*")* \)$'
is "generate rsa: p= is the DER SubjectPublicKeyInfo" \
    "$(value_of "$T/k/rsa1.txt")" "v=DKIM1; k=rsa; p=$(spki "$T/k/rsa1.private")"
is "generate rsa: two strings (the record is split)" \
    "$(strings_of "$T/k/rsa1.txt" | wc -l)" 2
is "generate rsa: no string over 255 bytes" \
    "$(longest "$T/k/rsa1.txt" | awk '{ print ($1 <= 255) }')" 1
is "generate rsa: KeyTable line (absolute path)" \
    "$(section "$out" 'KeyTable line:')" \
    "rsa1._domainkey.example.com example.com:rsa1:$T/k/rsa1.private"
is "generate rsa: SigningTable line" "$(section "$out" 'SigningTable line:')" \
    "*@example.com rsa1._domainkey.example.com"
is "generate rsa: prints the record it wrote" \
    "$(section "$out" 'DNS TXT record')" "$(cat "$T/k/rsa1.txt")"

# --dir, --bits 1024, a final dot on the domain
out=$("$K" generate -d example.com. -s rsa1024 --bits 1024 --dir "$T/k" 2>&1); rc=$?
is "generate --bits 1024: exit 0" "$rc" 0
like "generate --bits 1024: a 1024-bit key" \
    "$(openssl pkey -in "$T/k/rsa1024.private" -noout -text 2>&1 | head -1)" \
    '^Private-Key: \(1024 bit'
is "generate --bits 1024: p= matches" "$(value_of "$T/k/rsa1024.txt")" \
    "v=DKIM1; k=rsa; p=$(spki "$T/k/rsa1024.private")"
is "generate --bits 1024: one string" "$(strings_of "$T/k/rsa1024.txt" | wc -l)" 1
is "generate: the final dot of the domain is dropped" \
    "$(section "$out" 'SigningTable line:')" "*@example.com rsa1024._domainkey.example.com"

# refused sizes: exit 2, a message, no file
err=$("$K" generate -d example.com -s small --bits 512 --dir "$T/k" 2>&1); rc=$?
is "generate --bits 512: exit 2" "$rc" 2
like "generate --bits 512: cites RFC 8301" "$err" \
    '^authgate-keys: generate: --bits 512: RFC 8301 3\.2 forbids RSA keys under 1024 bits'
is "generate --bits 512: writes nothing" "$(ls "$T/k" | grep -c '^small')" 0
err=$("$K" generate -d example.com -s big --bits 16384 --dir "$T/k" 2>&1); rc=$?
is "generate --bits 16384: exit 2" "$rc" 2
like "generate --bits 16384: says the maximum" "$err" '--bits 16384: at most 8192'
err=$("$K" generate -d example.com -s x --bits 2k --dir "$T/k" 2>&1); rc=$?
is "generate --bits 2k: exit 2" "$rc" 2
like "generate --bits 2k: not a number" "$err" "--bits '2k' is not a number"

# ---- generate: Ed25519 ----------------------------------------------------
out=$("$K" generate -d example.com -s ed1 --type ed25519 --dir "$T/k" 2>&1); rc=$?
is "generate ed25519: exit 0" "$rc" 0
is "generate ed25519: key file mode 0600" "$(stat -c %a "$T/k/ed1.private" 2>&1)" 600
is "generate ed25519: PKCS#8 PEM" "$(head -1 "$T/k/ed1.private")" "-----BEGIN PRIVATE KEY-----"
like "generate ed25519: openssl reads an ED25519 key" \
    "$(openssl pkey -in "$T/k/ed1.private" -noout -text 2>&1 | head -1)" '^ED25519 Private-Key:'
is "generate ed25519: k=ed25519, p= the raw 32-byte key (RFC 8463)" \
    "$(value_of "$T/k/ed1.txt")" "v=DKIM1; k=ed25519; p=$(rawed "$T/k/ed1.private")"
is "generate ed25519: p= decodes to 32 bytes" \
    "$(value_of "$T/k/ed1.txt" | sed 's/.*p=//' | base64 -d | wc -c)" 32
is "generate ed25519: KeyTable line" "$(section "$out" 'KeyTable line:')" \
    "ed1._domainkey.example.com example.com:ed1:$T/k/ed1.private"
err=$("$K" generate -d example.com -s ed2 --type ed25519 --bits 4096 --dir "$T/k" 2>&1 >/dev/null); rc=$?
is "generate ed25519 --bits: exit 0" "$rc" 0
like "generate ed25519 --bits: ignored, with a warning" "$err" \
    '^authgate-keys: warning: --bits ignored: ed25519 keys have one size$'

# ---- generate: never overwrite, --force, the umask -----------------------
sum=$(cksum < "$T/k/rsa1.private")
err=$("$K" generate -d example.com -s rsa1 --dir "$T/k" 2>&1); rc=$?
is "generate over an existing key: exit 1" "$rc" 1
like "generate over an existing key: says so" "$err" \
    "^authgate-keys: $T/k/rsa1.private exists: use --force to replace it"
is "generate over an existing key: key unchanged" "$(cksum < "$T/k/rsa1.private")" "$sum"
rm "$T/k/ed2.private"
err=$("$K" generate -d example.com -s ed2 --type ed25519 --dir "$T/k" 2>&1); rc=$?
is "generate over an existing record file: exit 1" "$rc" 1
like "generate over an existing record file: names it" "$err" "$T/k/ed2.txt exists"
cp "$T/k/rsa1.private" "$T/k/rsa1.before"
out=$(umask 277 && "$K" generate -d example.com -s rsa1 --dir "$T/k" --force 2>&1); rc=$?
is "generate --force: exit 0" "$rc" 0
is "generate --force: a new key" "$(cmp -s "$T/k/rsa1.private" "$T/k/rsa1.before"; echo $?)" 1
is "generate --force under umask 277: still exactly 0600" "$(stat -c %a "$T/k/rsa1.private")" 600
is "generate --force: the record follows the key" "$(value_of "$T/k/rsa1.txt")" \
    "v=DKIM1; k=rsa; p=$(spki "$T/k/rsa1.private")"
is "generate --force: no temporary file left" "$(ls "$T/k" | grep -c tmp)" 0

# ---- generate: usage errors ------------------------------------------------
err=$("$K" generate -s x 2>&1); rc=$?
is "generate without --domain: exit 2" "$rc" 2
like "generate without --domain: says so" "$err" '^authgate-keys: generate: --domain is required$'
err=$("$K" generate -d 'exa mple.com' -s x 2>&1); rc=$?
is "generate bad domain: exit 2" "$rc" 2
like "generate bad domain: says why" "$err" "--domain 'exa mple.com': labels of letters, digits"
err=$("$K" generate -d example.com -s ../x 2>&1); rc=$?
is "generate selector with a path: exit 2" "$rc" 2
like "generate selector with a path: refused" "$err" "--selector '\.\./x'"
err=$("$K" generate -d example.com -s x --type dsa 2>&1); rc=$?
is "generate --type dsa: exit 2" "$rc" 2
like "generate --type dsa: says the choices" "$err" "--type 'dsa': rsa or ed25519"
err=$("$K" generate -d example.com -s x --key /dev/null 2>&1); rc=$?
is "generate --key: exit 2" "$rc" 2
like "generate --key: not its option" "$err" 'generate: --key is not an option of this command'
out=$("$K" generate --help); rc=$?
is "generate --help: exit 0" "$rc" 0
like "generate --help: lists --bits" "$out" '--bits N +RSA key size, 1024 to 8192'

# ---- show --------------------------------------------------------------------
is "show rsa: the record generate wrote" \
    "$("$K" show -k "$T/k/rsa1.private" -d example.com -s rsa1 2>&1)" "$(cat "$T/k/rsa1.txt")"
is "show ed25519: the record generate wrote" \
    "$("$K" show --key "$T/k/ed1.private" --domain example.com --selector ed1 2>&1)" \
    "$(cat "$T/k/ed1.txt")"
is "show without a name: the quoted strings" "$("$K" show -k "$T/k/ed1.private" 2>&1)" \
    "$(sed 's/^.*( //; s/ )$//' "$T/k/ed1.txt")"
echo "not a key" > "$T/garbage.private"
chmod 600 "$T/garbage.private"
err=$("$K" show -k "$T/garbage.private" 2>&1); rc=$?
is "show garbage: exit 1" "$rc" 1
like "show garbage: says so, names the file" "$err" "^authgate-keys: $T/garbage.private is not a private key"
err=$("$K" show -k "$T/k/ed1.private" -d example.com 2>&1); rc=$?
is "show --domain without --selector: exit 2" "$rc" 2
like "show --domain without --selector: says so" "$err" 'show: --domain and --selector go together'

# ---- check: key files made for the cases -------------------------------
"$K" generate -d example.com -s other --dir "$T/k" >/dev/null 2>&1
"$K" generate -d example.com -s ed3 --type ed25519 --dir "$T/k" >/dev/null 2>&1
openssl pkey -in "$T/k/rsa1.private" -pubout -out "$T/pub.pem" 2>/dev/null
openssl pkey -in "$T/k/rsa1.private" -traditional -out "$T/trad.pem" 2>/dev/null
openssl pkey -in "$T/k/rsa1.private" -aes256 -passout pass:secret -out "$T/enc.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 -out "$T/r512.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null
chmod 600 "$T"/*.pem
cp -p "$T/k/rsa1.private" "$T/world.private" && chmod 644 "$T/world.private"
cp -p "$T/k/rsa1.private" "$T/wwrite.private" && chmod 602 "$T/wwrite.private"
cp -p "$T/k/rsa1.private" "$T/group.private" && chmod 640 "$T/group.private"
cp -p "$T/k/rsa1.private" "$T/gwrite.private" && chmod 620 "$T/gwrite.private"
openssl pkey -in "$T/k/rsa1.private" -outform DER -out "$T/der.key" 2>/dev/null
chmod 600 "$T/der.key"

RSA=$(value_of "$T/k/rsa1.txt")
P_RSA=$(spki "$T/k/rsa1.private")
P_ED=$(rawed "$T/k/ed1.private")
P_ED_SPKI=$(spki "$T/k/ed1.private")
P_PKCS1=$(openssl rsa -in "$T/k/rsa1.private" -RSAPublicKey_out -outform DER 2>/dev/null | base64 -w0)
# p= with white space inside (RFC 6376 3.6.1 allows FWS in base64); \t
# is a tab once the zone's JSON is read
P_SPACED="$(printf '%s' "$P_RSA" | cut -c1-100) $(printf '%s' "$P_RSA" | cut -c101-200)\t$(printf '%s' "$P_RSA" | cut -c201-)"
D=_domainkey.example.com.
cat > "$T/zone.json" <<EOF
{"ttl": 60, "records": [
 ["rsa1.$D", "TXT", "$RSA"],
 ["rsa1024.$D", "TXT", "$(value_of "$T/k/rsa1024.txt")"],
 ["ed1.$D", "TXT", "$(value_of "$T/k/ed1.txt")"],
 ["other.$D", "TXT", "$(value_of "$T/k/other.txt")"],
 ["revoked.$D", "TXT", "v=DKIM1; k=rsa; p="],
 ["two.$D", "TXT", "$RSA"],
 ["two.$D", "TXT", "v=DKIM1; k=rsa; p=$(spki "$T/k/other.private")"],
 ["kmismatch.$D", "TXT", "v=DKIM1; k=ed25519; p=$P_ED"],
 ["nodata.$D", "A", "192.0.2.1"],
 ["spf.$D", "TXT", "v=spf1 -all"],
 ["plus.$D", "TXT", "$RSA"],
 ["plus.$D", "TXT", "google-site-verification=abc"],
 ["spaced.$D", "TXT", " v = DKIM1 ;\tk=rsa; t=y:s; n=notes;x_unknown=1; p=$P_SPACED ;"],
 ["nov.$D", "TXT", "p=$P_RSA"],
 ["badb64.$D", "TXT", "v=DKIM1; k=rsa; p=MIIB!!!"],
 ["vlate.$D", "TXT", "k=rsa; v=DKIM1; p=$P_RSA"],
 ["dup.$D", "TXT", "v=DKIM1; p=$P_RSA; p=$P_RSA"],
 ["nop.$D", "TXT", "v=DKIM1; k=rsa"],
 ["badname.$D", "TXT", "v=DKIM1; x-bad=1; p=$P_RSA"],
 ["hsha1.$D", "TXT", "v=DKIM1; h=sha1; k=rsa; p=$P_RSA"],
 ["hboth.$D", "TXT", "v=DKIM1; h=sha1:sha256; k=rsa; p=$P_RSA"],
 ["edspki.$D", "TXT", "v=DKIM1; k=ed25519; p=$P_ED_SPKI"],
 ["pkcs1.$D", "TXT", "v=DKIM1; k=rsa; p=$P_PKCS1"]],
 "behaviour": {"fail.$D": {"rcode": "SERVFAIL"}, "silent.$D": {"drop": true}}}
EOF

/usr/bin/python3 "$AUTHGATE_SRCDIR/tests/integration/dns_server.py" --port 0 \
    --port-file "$T/dns.port" --zone "$T/zone.json" --querylog "$T/query.log" \
    > "$T/dns.out" 2>&1 &
DNS_PID=$!
i=0
while [ ! -s "$T/dns.port" ] && [ $i -lt 200 ] && kill -0 "$DNS_PID" 2>/dev/null; do
	sleep 0.05
	i=$((i + 1))
done
ok "loopback DNS server started" test -s "$T/dns.port"
DNS="127.0.0.1@$(cat "$T/dns.port" 2>/dev/null)"
C="-c $T/empty.conf -o dns_servers=$DNS"

# check SEL KEY [args] - run check, set $out (stdout), $err (stderr), $rc
check() {
	sel=$1 key=$2
	shift 2
	# shellcheck disable=SC2086
	out=$("$K" check -d example.com -s "$sel" -k "$key" $C "$@" 2>"$T/err")
	rc=$?
	err=$(cat "$T/err")
}

check rsa1 "$T/k/rsa1.private"
is "check matching rsa key: exit 0" "$rc" 0
is "check matching rsa key: key OK line" "$out" "key OK: example.com/rsa1 rsa 2048"
is "check matching rsa key: nothing on stderr" "$err" ""
like "check asked the -o dns_servers server" "$(cat "$T/query.log")" \
    ' rsa1\._domainkey\.example\.com\. TXT NOERROR/1$'
check ed1 "$T/k/ed1.private"
is "check matching ed25519 key: exit 0" "$rc" 0
is "check matching ed25519 key: key OK line" "$out" "key OK: example.com/ed1 ed25519 256"
check rsa1024 "$T/k/rsa1024.private"
is "check 1024-bit key: key OK line" "$out" "key OK: example.com/rsa1024 rsa 1024"
check rsa1024 "$T/k/rsa1024.private" -o dkim_min_key_bits=2048
is "check key under dkim_min_key_bits: exit 1" "$rc" 1
like "check key under dkim_min_key_bits: the daemon would refuse it" "$err" \
    "^authgate-keys: $T/k/rsa1024\.private: an rsa key of 1024 bits is too short: dkim_min_key_bits is 2048, authgate would refuse it$"
check rsa1 "$T/trad.pem"
is "check traditional PEM (opendkim-genkey): exit 0" "$rc" 0

# -o dns_servers wins over the file's (which names a port nobody serves)
printf 'dns_servers = 127.0.0.1@%s\ndns_timeout = 2s\n' "$(free_port)" > "$T/dead.conf"
out=$("$K" check -d example.com -s rsa1 -k "$T/k/rsa1.private" -c "$T/dead.conf" \
    -o "dns_servers=$DNS" 2>&1); rc=$?
is "check -o dns_servers over the file's: exit 0" "$rc" 0
printf 'dns_servers = %s\n' "$DNS" > "$T/good.conf"
: > "$T/query.log"
out=$("$K" check -d example.com -s ed1 -k "$T/k/ed1.private" -c "$T/good.conf" 2>&1); rc=$?
is "check with dns_servers from -c: exit 0" "$rc" 0
is "check with dns_servers from -c: one query, to our server" \
    "$(grep -c ' ed1\._domainkey\.example\.com\. TXT ' "$T/query.log")" 1

check other "$T/k/rsa1.private"
is "check different key: exit 1" "$rc" 1
like "check different key: keys differ" "$err" \
    "^authgate-keys: keys differ: the key at other\._domainkey\.example\.com is not the public half of $T/k/rsa1\.private \(published: 2048-bit rsa, file: 2048-bit rsa\)$"
is "check different key: nothing on stdout" "$out" ""
check ed1 "$T/k/ed3.private"
is "check different ed25519 key: exit 1" "$rc" 1
like "check different ed25519 key: keys differ" "$err" '^authgate-keys: keys differ: .*\(published: ed25519, file: ed25519\)$'
check revoked "$T/k/rsa1.private"
is "check revoked key: exit 1" "$rc" 1
like "check revoked key: says so" "$err" \
    '^authgate-keys: key revoked: revoked\._domainkey\.example\.com has an empty p= \(RFC 6376 3\.6\.1\)$'
check nosuch "$T/k/rsa1.private"
is "check no record (NXDOMAIN): exit 1" "$rc" 1
like "check no record (NXDOMAIN): says so" "$err" \
    '^authgate-keys: no key record: nosuch\._domainkey\.example\.com does not exist \(NXDOMAIN\)$'
check nodata "$T/k/rsa1.private"
is "check no TXT record: exit 1" "$rc" 1
like "check no TXT record: says so" "$err" \
    '^authgate-keys: no key record: nodata\._domainkey\.example\.com has no TXT record$'
check spf "$T/k/rsa1.private"
is "check only a non-DKIM TXT record: exit 1" "$rc" 1
like "check only a non-DKIM TXT record: says so, shows it" "$err" \
    '^authgate-keys: no key record: spf\._domainkey\.example\.com has 1 TXT record, none a DKIM key \("v=spf1 -all"\)$'
check two "$T/k/rsa1.private"
is "check two DKIM records: exit 1" "$rc" 1
like "check two DKIM records: says so" "$err" \
    '^authgate-keys: more than one DKIM key record at two\._domainkey\.example\.com \(2\)'
check plus "$T/k/rsa1.private"
is "check DKIM record plus another TXT: exit 0" "$rc" 0
like "check DKIM record plus another TXT: warns" "$err" \
    '^authgate-keys: warning: plus\._domainkey\.example\.com also has 1 TXT record that is not a DKIM key \("google-site-verification=abc"\)'
check kmismatch "$T/k/rsa1.private"
is "check k=ed25519 for an rsa file: exit 1" "$rc" 1
like "check k=ed25519 for an rsa file: type mismatch" "$err" \
    "^authgate-keys: key type mismatch: kmismatch\._domainkey\.example\.com has k=ed25519, $T/k/rsa1\.private is an rsa key$"
check rsa1 "$T/k/ed1.private"
is "check k=rsa for an ed25519 file: exit 1" "$rc" 1
like "check k=rsa for an ed25519 file: type mismatch" "$err" 'has k=rsa, .*/ed1\.private is an ed25519 key$'

# DNS failures: which one, and from where
check fail "$T/k/rsa1.private"
is "check SERVFAIL: exit 1" "$rc" 1
like "check SERVFAIL: says so, names the server" "$err" \
    "^authgate-keys: DNS failure: SERVFAIL for fail\._domainkey\.example\.com TXT from $DNS; try again later$"
check silent "$T/k/rsa1.private" -o dns_timeout=300ms
is "check no answer: exit 1" "$rc" 1
like "check no answer: says timeout" "$err" \
    "^authgate-keys: DNS failure: timeout, no answer for silent\._domainkey\.example\.com TXT from $DNS within 300 ms \(dns_timeout\)$"

# tolerated syntax: white space, t=, unknown tags, no v=, h= with sha256
check spaced "$T/k/rsa1.private"
is "check FWS in p=, unknown tags, t=y:s: exit 0" "$rc" 0
like "check t=y: warns about testing mode" "$err" '^authgate-keys: warning: spaced\._domainkey\.example\.com has t=y'
check nov "$T/k/rsa1.private"
is "check record without v=: exit 0" "$rc" 0
check hboth "$T/k/rsa1.private"
is "check h=sha1:sha256: exit 0" "$rc" 0

# malformed records: what is wrong with them
for c in "badb64|p= is not base64: '!' at offset" \
    "vlate|v= is not the first tag \(RFC 6376 3\.6\.1\)" \
    "dup|tag p appears twice" \
    "nop|no p= tag" \
    "badname|bad tag name 'x-bad'" \
    "edspki|p= is 44 bytes, a SubjectPublicKeyInfo" \
    "pkcs1|p= is a bare RSAPublicKey \(PKCS#1\)"; do
	sel=${c%%|*}
	key="$T/k/rsa1.private"
	[ "$sel" = edspki ] && key="$T/k/ed1.private"
	check "$sel" "$key"
	is "check malformed ($sel): exit 1" "$rc" 1
	like "check malformed ($sel): says what" "$err" \
	    "^authgate-keys: malformed key record at $sel\._domainkey\.example\.com: ${c#*|}"
done
check hsha1 "$T/k/rsa1.private"
is "check h=sha1 only: exit 1" "$rc" 1
like "check h=sha1 only: says so" "$err" 'h=sha1 excludes sha256'

# key files that must be refused, each with its reason
check rsa1 "$T/world.private"
is "check world-readable key: exit 1" "$rc" 1
like "check world-readable key: says so" "$err" \
    "^authgate-keys: $T/world\.private is readable by others \(mode 0644\): chmod 600 it"
check rsa1 "$T/wwrite.private"
is "check world-writable key: exit 1" "$rc" 1
like "check world-writable key: says so" "$err" 'wwrite\.private is writable by others \(mode 0602\)'
check rsa1 "$T/gwrite.private"
is "check group-writable key (the daemon refuses it): exit 1" "$rc" 1
like "check group-writable key: says so" "$err" 'gwrite\.private is writable by its group \(mode 0620\)'
check rsa1 "$T/group.private"
is "check group-readable key (the daemon refuses it): exit 1" "$rc" 1
like "check group-readable key: says so" "$err" \
    "^authgate-keys: $T/group\.private is readable by its group \(mode 0640\): chmod 600 it"
check rsa1 "$T/garbage.private"
is "check garbage file: exit 1" "$rc" 1
like "check garbage file: not a private key" "$err" \
    "^authgate-keys: $T/garbage\.private is not a private key"
check rsa1 "$T/der.key"
is "check DER key (the daemon reads PEM only): exit 1" "$rc" 1
like "check DER key: not a PEM private key" "$err" 'der\.key is not a private key \(no PEM'
check rsa1 "$T/pub.pem"
is "check public key file: exit 1" "$rc" 1
like "check public key file: says so" "$err" 'pub\.pem is a public key, not a private key$'
check rsa1 "$T/missing.private"
is "check missing file: exit 1" "$rc" 1
like "check missing file: cannot read" "$err" \
    "^authgate-keys: cannot read $T/missing\.private: No such file or directory$"
out=$(timeout 20 "$K" check -d example.com -s rsa1 -k "$T/enc.pem" $C 2>&1 </dev/null); rc=$?
is "check encrypted key: exit 1 (no pass phrase prompt)" "$rc" 1
like "check encrypted key: says so" "$out" 'enc\.pem: the key is encrypted'
check rsa1 "$T/r512.pem"
is "check 512-bit key: exit 1" "$rc" 1
like "check 512-bit key: cites RFC 8301" "$err" 'an rsa key of 512 bits is too weak: RFC 8301 3\.2 requires at least 1024'
check rsa1 "$T/ec.pem"
is "check EC key: exit 1" "$rc" 1
like "check EC key: not a DKIM key type" "$err" 'a key of type EC; DKIM keys are rsa or ed25519$'

# usage and configuration errors: exit 2
err=$("$K" check -d example.com -s rsa1 -c "$T/empty.conf" 2>&1); rc=$?
is "check without --key: exit 2" "$rc" 2
like "check without --key: says so" "$err" '^authgate-keys: check: --key is required$'
printf '\ndns_timeout = soon\n' > "$T/bad.conf"
err=$("$K" check -d example.com -s rsa1 -k "$T/k/rsa1.private" -c "$T/bad.conf" 2>&1); rc=$?
is "check bad config: exit 2" "$rc" 2
like "check bad config: file:line" "$err" "^$T/bad\.conf:2: dns_timeout: 'soon' is not a time"
err=$("$K" check -d example.com -s rsa1 -k "$T/k/rsa1.private" -c "$T/empty.conf" -o nosuch=1 2>&1); rc=$?
is "check unknown -o: exit 2" "$rc" 2
like "check unknown -o: names it" "$err" "unknown parameter 'nosuch'"
err=$("$K" frob 2>&1); rc=$?
is "unknown command: exit 2" "$rc" 2
like "unknown command: says so" "$err" "^authgate-keys: unknown command 'frob'"

# only the configured server was asked, and only for what was checked
is "every query went to the loopback server's zone" \
    "$(awk '{ print $3 }' "$T/query.log" | grep -vc '\._domainkey\.example\.com\.$')" 0

done_testing

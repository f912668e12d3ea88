#!/bin/bash
# test_migrate.sh - contrib/authgate-migrate: a realistic opendkim.conf +
# opendmarc.conf pair (tests/data/migrate/, paths moved into a temp dir)
# becomes an authgate.conf that `authgate -n` accepts, with the mapped
# values in force (`authgate -p`), the single-key setup turned into
# OpenDKIM-format tables, and every setting left out named with its
# reason. Also: tables used as they are, OpenDMARC's annotate-only default
# kept, exit 1 for an unreadable file, and contrib/MIGRATING.md's tables
# equal to what the script prints.
. "$(dirname "$0")/lib.sh"
MIGRATE="/usr/bin/python3 $AUTHGATE_SRCDIR/contrib/authgate-migrate"
D="$AUTHGATE_SRCDIR/tests/data/migrate"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/etc/opendkim" "$T/etc/opendmarc" "$T/keys" "$T/state"
sed -e "s|/etc/opendkim|$T/etc/opendkim|" -e "s|/etc/dkimkeys|$T/keys|" \
    "$D/opendkim.conf" > "$T/opendkim.conf"
sed -e "s|/etc/opendmarc|$T/etc/opendmarc|" "$D/opendmarc.conf" > "$T/opendmarc.conf"
cp "$D/internal-hosts" "$T/etc/opendkim/"
cp "$D/ignore.hosts" "$T/etc/opendmarc/"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 \
    -out "$T/keys/mail2026.private" 2>/dev/null
chmod 600 "$T/keys/mail2026.private"

# ---- the pair ---------------------------------------------------------
$MIGRATE --opendkim "$T/opendkim.conf" --opendmarc "$T/opendmarc.conf" \
    --tables-dir "$T/tables" --state-dir "$T/state" > "$T/authgate.conf" 2> "$T/err"
is "pair: exit 0" "$?" 0
is "pair: nothing on stderr" "$(cat "$T/err")" ""
out=$("$AUTHGATE_BIN" -n -c "$T/authgate.conf" 2>&1)
is "pair: authgate -n accepts the result" "$?" 0
like "pair: authgate -n says OK" "$out" 'configuration OK'
p=$("$AUTHGATE_BIN" -p -c "$T/authgate.conf" 2>&1)
val() { printf '%s\n' "$p" | sed -n "s/^$1 = //p"; }
is "Socket -> milter_socket" "$(val milter_socket)" "inet:8891@localhost"
is "AuthservID -> authserv_id" "$(val authserv_id)" "mx.example.com"
is "SyslogFacility LOG_MAIL -> mail" "$(val syslog_facility)" "mail"
is "InternalHosts (file) + IgnoreHosts -> internal_hosts" "$(val internal_hosts)" \
    "127.0.0.1, ::1, 192.0.2.0/24, 2001:db8:1::/48, 198.51.100.0/24"
is "Canonicalization -> dkim_canonicalization" "$(val dkim_canonicalization)" "relaxed/simple"
is "OversignHeaders -> dkim_oversign_headers" "$(val dkim_oversign_headers)" "From, Subject, Date"
is "MaximumSignaturesToVerify -> dkim_max_signatures" "$(val dkim_max_signatures)" 5
is "On-DNSError -> on_dns_error" "$(val on_dns_error)" tempfail
is "DNSTimeout -> dns_timeout" "$(val dns_timeout)" 7s
is "Nameservers -> dns_servers" "$(val dns_servers)" 127.0.0.1
is "Domain/Selector/KeyFile -> key_table" "$(val key_table)" "$T/tables/key.table"
is "Domain/Selector/KeyFile -> signing_table" "$(val signing_table)" "$T/tables/signing.table"
is "RejectFailures true -> dmarc_enforce" "$(val dmarc_enforce)" yes
is "RequiredHeaders true -> dmarc_multi_from" "$(val dmarc_multi_from)" reject
is "IgnoreMailFrom -> dmarc_ignore_domains" "$(val dmarc_ignore_domains)" \
    "lists.example.net, example.info"
is "HistoryFile -> dmarc_history in --state-dir" "$(val dmarc_history)" \
    "sqlite:$T/state/dmarc-history.db"
is "KeyTable: one key per domain, OpenDKIM's format" \
    "$(grep -v '^#' "$T/tables/key.table")" \
    "mail2026._domainkey.example.com example.com:mail2026:$T/keys/mail2026.private
mail2026._domainkey.example.org example.org:mail2026:$T/keys/mail2026.private"
is "SigningTable: SubDomains adds .domain lines" \
    "$(grep -v '^#' "$T/tables/signing.table")" \
    "example.com mail2026._domainkey.example.com
.example.com mail2026._domainkey.example.com
example.org mail2026._domainkey.example.org
.example.org mail2026._domainkey.example.org"
out=$("$AUTHGATE_BIN" check -c "$T/authgate.conf" -o dns_servers=127.0.0.1@9 \
    -o dns_timeout=100ms --client-ip 127.0.0.1 --mail-from a@sub.example.com \
    - 2>&1 <<'MSG'
From: a@sub.example.com
To: b@example.net
Subject: hello
Date: Mon, 23 Nov 2026 12:00:00 +0000
Message-ID: <m1@sub.example.com>

Hello.
MSG
)
like "the generated tables sign for a subdomain (d=example.com)" "$out" \
    '^DKIM-Signature: .*d=example\.com; .*s=mail2026'
c=$(cat "$T/authgate.conf")
like "left out: UserID, with the reason" "$c" \
    '^#   no equivalent: authgate runs as its own user'
like "left out: a host name of InternalHosts" "$c" \
    '^#   not carried over \(authgate takes addresses and networks only\): mail\.example\.com$'
like "left out: PublicSuffixList, with the reason" "$c" \
    "^# opendmarc.conf PublicSuffixList .*"$'\n'"#   no equivalent: not needed: RFC 9989"
like "left out: OpenDMARC's socket, the MTA told to drop that milter" "$c" \
    'authgate has one socket, inet:8891@localhost \(from opendkim.conf\): remove this milter'
unlike "RequireSafeKeys yes needs no comment" "$c" 'RequireSafeKeys'

# ---- without --tables-dir: the tables as comments, the rest usable -----
$MIGRATE --opendkim "$T/opendkim.conf" > "$T/notables.conf"
is "no --tables-dir: exit 0" "$?" 0
like "no --tables-dir: the KeyTable lines are printed" "$(cat "$T/notables.conf")" \
    "^#   mail2026._domainkey.example.com example.com:mail2026:$T/keys/mail2026.private$"
ok "no --tables-dir: authgate -n accepts it" "$AUTHGATE_BIN" -n -c "$T/notables.conf"

# ---- KeyTable/SigningTable used as they are ---------------------------
$MIGRATE --opendkim "$D/opendkim-tables.conf" > "$T/tables.conf"
is "tables: exit 0" "$?" 0
c=$(grep -v '^#' "$T/tables.conf")
like "tables: KeyTable file: -> key_table" "$c" '^key_table = /etc/opendkim/key\.table$'
like "tables: refile: kept" "$c" '^signing_table = refile:/etc/opendkim/signing\.table$'
like "tables: local: socket -> unix:" "$c" \
    '^milter_socket = unix:/var/spool/postfix/opendkim/opendkim\.sock$'
like "tables: Mode s -> dkim_verify = no" "$c" '^dkim_verify = no$'
like "tables: a delta OversignHeaders is named, not guessed" "$(cat "$T/tables.conf")" \
    'OversignHeaders \*,\+List-Id .*'$'\n''#   delta lists'

# ---- OpenDMARC alone: its annotate-only default is kept ----------------
printf 'Socket inet:8893@localhost\n' > "$T/dmarc-only.conf"
$MIGRATE --opendmarc "$T/dmarc-only.conf" > "$T/dmarc-only.out"
p=$("$AUTHGATE_BIN" -p -c "$T/dmarc-only.out" 2>&1)
is "no RejectFailures: dmarc_enforce = no" "$(val dmarc_enforce)" no

# ---- unreadable input ---------------------------------------------------
out=$($MIGRATE --opendkim "$T/missing.conf" 2> "$T/err"); rc=$?
is "unreadable input: exit 1" "$rc" 1
is "unreadable input: nothing on stdout" "$out" ""
like "unreadable input: says which file" "$(cat "$T/err")" \
    "cannot read $T/missing.conf"

# ---- MIGRATING.md shows what the script does ----------------------------
doc=$(sed -n '/^<!-- BEGIN authgate-migrate --markdown -->$/,/^<!-- END/p' \
    "$AUTHGATE_SRCDIR/contrib/MIGRATING.md" | sed '1d;$d')
is "contrib/MIGRATING.md has the tables of authgate-migrate --markdown" \
    "$doc" "$($MIGRATE --markdown)"
done_testing

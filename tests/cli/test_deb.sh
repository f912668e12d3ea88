#!/bin/bash
# test_deb.sh - the Debian package (contrib/debian, `make deb`): it builds,
# installs into this system with dpkg -i (user authgate, /var/lib/authgate,
# conffiles, the systemd unit, which systemd-analyze verify accepts), the
# installed authgate -n accepts the packaged configuration, and the daemon
# runs as the unit runs it (as user authgate, in the foreground, pid file
# in /run/authgate) on a free loopback port and filters a message; then
# dpkg -P removes everything again. systemd is not PID 1 in CI containers,
# so the unit itself is not started. Needs root; runs in the normal build
# only (the package compiles the tree on its own). Missing build packages
# are a failure that names the apt-get command, never a skip.
. "$(dirname "$0")/lib.sh"
SRC="$AUTHGATE_SRCDIR"
B="$AUTHGATE_BUILDDIR"
T=$(mktemp -d)
DPID=""
INSTALLED=""
MADE_USER=""
MADE_RUN=""
cleanup() {
	stop_pid "$DPID"
	if [ -n "$INSTALLED" ]; then
		dpkg -P authgate >/dev/null 2>&1
	fi
	[ -n "$MADE_RUN" ] && rm -rf /run/authgate
	if [ -n "$MADE_USER" ] && getent passwd authgate >/dev/null; then
		userdel authgate >/dev/null 2>&1
		getent group authgate >/dev/null && groupdel authgate >/dev/null 2>&1
	fi
	rm -rf "$T"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
	_report 1 "runs as root (dpkg -i)" "run the test suite as root"
	done_testing
	exit
fi
# One package build and install at a time on this machine.
exec 9>/run/lock/authgate-test-deb.lock
flock -w 600 9

# ---- build dependencies -------------------------------------------------
need=""
for tool in dpkg-buildpackage:dpkg-dev dh:debhelper systemd-analyze:systemd; do
	command -v "${tool%%:*}" >/dev/null || need="$need ${tool#*:}"
done
deps=$(dpkg-checkbuilddeps "$SRC/contrib/debian/control" 2>&1 |
	sed -n 's/.*Unmet build dependencies: //p' |
	sed 's/([^)]*)//g; s/ *| *[^ ]*//g')
need="$need $deps"
need=$(echo $need)
is "build packages installed" "$need" ""
if [ -n "$need" ]; then
	echo "# install them with: apt-get install --no-install-recommends $need"
	done_testing
	exit
fi
if dpkg-query -W -f='${Status}' authgate 2>/dev/null | grep -q 'ok installed'; then
	_report 1 "authgate is not installed on this system already" \
	    "dpkg -s authgate: installed; the test would replace and remove it"
	done_testing
	exit
fi
getent passwd authgate >/dev/null || MADE_USER=1

# ---- build ----------------------------------------------------------------
start=$(date +%s)
# (not the jobserver of a surrounding make check)
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$B" deb \
    DEB_JOBS="${DEB_JOBS:-2}" 2>&1); rc=$?
is "make deb: exit 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -40 | sed 's/^/# /'
echo "# make deb took $(($(date +%s) - start)) s"
deb=$(ls "$B"/deb/authgate_*_*.deb 2>/dev/null | head -1)
ok "make deb: the .deb is in build/deb" test -f "$deb"
files=$(dpkg-deb -c "$deb" 2>&1 | awk '{print $6}')
for f in ./usr/sbin/authgate ./usr/sbin/authgate-keys ./usr/sbin/authgate-reports \
    ./usr/sbin/authgate-migrate ./usr/share/man/man8/authgate.8.gz \
    ./usr/share/man/man5/authgate.conf.5.gz ./usr/share/man/man8/authgate-keys.8.gz \
    ./usr/share/man/man8/authgate-reports.8.gz ./etc/authgate/authgate.conf \
    ./etc/default/authgate ./lib/systemd/system/authgate.service \
    ./etc/cron.d/authgate; do
	like "package has $f" "$files" "^${f//./\\.}\$"
done

# ---- install ---------------------------------------------------------------
out=$(dpkg -i "$deb" 2>&1); rc=$?
INSTALLED=1
is "dpkg -i: exit 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/# /'
is "dpkg: installed" "$(dpkg-query -W -f='${Status}' authgate 2>&1)" "install ok installed"
like "conffiles: authgate.conf, the reports cron job, /etc/default/authgate" \
    "$(dpkg-query -W -f='${Conffiles}' authgate 2>&1 | awk '{print $1}' | tr '\n' ' ')" \
    '^/etc/authgate/authgate\.conf /etc/cron\.d/authgate /etc/default/authgate $'
if [ -n "$MADE_USER" ]; then
	like "postinst made the system user authgate" "$(getent passwd authgate)" \
	    '^authgate:x:[0-9]+:[0-9]+:[^:]*:/var/lib/authgate:/usr/sbin/nologin$'
else
	# made before (`contrib/setup.sh run` creates it too): postinst keeps
	# it as it is
	like "postinst kept the existing system user authgate" \
	    "$(getent passwd authgate)" '^authgate:x:[0-9]+:[0-9]+:'
fi
is "postinst made /var/lib/authgate" \
    "$(stat -c '%U:%G %a' /var/lib/authgate 2>&1)" "authgate:authgate 750"
out=$(systemd-analyze verify /lib/systemd/system/authgate.service 2>&1); rc=$?
is "systemd-analyze verify: the unit is valid" "$rc:$out" "0:"
out=$(/usr/sbin/authgate -n 2>&1)
is "installed authgate -n accepts the packaged configuration" "$out" \
    "authgate: configuration OK (/etc/authgate/authgate.conf)"

# ---- run it as the unit does ----------------------------------------------
unit=/lib/systemd/system/authgate.service
user=$(sed -n 's/^User=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | sed 's/ \$AUTHGATE_OPTS$//')
is "the unit runs authgate -f as authgate" "$user:$exec_start" "authgate:/usr/sbin/authgate -f"
# RuntimeDirectory=authgate, as systemd makes it at every start: owned
# by the unit's user even when an older one is there (a run before the
# package, say)
[ -d /run/authgate ] || MADE_RUN=1
install -d -o authgate -g authgate -m 0750 /run/authgate
PORT=$(free_port)
setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
    $exec_start -o "milter_socket=inet:$PORT@127.0.0.1" \
    -o dns_servers=127.0.0.1@9 -o dns_timeout=1s \
    > "$T/out" 2> "$T/err" < /dev/null &
DPID=$!
ok "daemon listens on its loopback port" wait_port "$PORT"
ok "pid file in /run/authgate" wait_file /run/authgate/authgate.pid
is "pid file holds the daemon's pid" "$(cat /run/authgate/authgate.pid 2>&1)" "$DPID"
is "runs as authgate" "$(ps -o user= -p "$DPID" | tr -d ' ')" authgate
out=$("$B/tests/tools/miltc" "inet:$PORT@127.0.0.1" "$SRC/tests/cli/messages/plain.eml" 2>&1)
like "filters a message: our A-R header" "$out" '^insert-header: 0 Authentication-Results: '
like "filters a message: accepted" "$out" '^result: continue$'
like "logs the message on stderr (the journal under systemd)" "$(cat "$T/err")" 'action=accept'
ok "reload as ExecReload does: authgate -n, then SIGHUP" \
    setpriv --reuid="$user" --regid="$user" --init-groups /usr/sbin/authgate -n
kill -HUP "$DPID"
sleep 0.5
ok "still running after SIGHUP" kill -0 "$DPID"
kill -TERM "$DPID"
wait_gone "$DPID" 40
wait "$DPID"
is "SIGTERM: exit 0" "$?" 0
DPID=""
ok "pid file removed at exit" test ! -e /run/authgate/authgate.pid

# ---- remove -----------------------------------------------------------------
out=$(dpkg -P authgate 2>&1); rc=$?
is "dpkg -P: exit 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/# /'
INSTALLED=""
left=""
for f in /usr/sbin/authgate /usr/sbin/authgate-migrate /etc/authgate \
    /etc/default/authgate /lib/systemd/system/authgate.service /var/lib/authgate \
    /etc/systemd/system/multi-user.target.wants/authgate.service; do
	[ -e "$f" ] && left="$left $f"
done
is "nothing of the package is left" "$left" ""
unlike "dpkg: not installed" "$(dpkg-query -W -f='${Status}' authgate 2>/dev/null)" \
    'ok installed' 
done_testing

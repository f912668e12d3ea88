# lib.sh - TAP helpers for the shell tests (sourced).
#
# ok NAME CMD...        run CMD; "ok" when it exits 0
# is NAME GOT WANT      string equality, shows both on failure
# like NAME TEXT REGEX  grep -E match
# unlike NAME TEXT REGEX
# done_testing          print the plan, exit 1 if anything failed
# Every process a test starts is stopped by its PID in a trap.

: "${AUTHGATE_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/build/filter/authgate}"
: "${AUTHGATE_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${AUTHGATE_BUILDDIR:=$(dirname "$(dirname "$AUTHGATE_BIN")")}"
MILTC="$AUTHGATE_BUILDDIR/tests/tools/miltc"
MSGS="$AUTHGATE_SRCDIR/tests/cli/messages"
T_N=0
T_FAIL=0

_report() { # status name [diagnostics...]
	T_N=$((T_N + 1))
	if [ "$1" = 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAIL=$((T_FAIL + 1))
		shift 2
		for d in "$@"; do printf '%s\n' "$d" | sed 's/^/#   /'; done
	fi
}

ok() {
	name=$1
	shift
	out=$("$@" 2>&1)
	_report $? "$name" "command: $*" "output: $out"
}

is() {
	if [ "$2" = "$3" ]; then _report 0 "$1"; else
		_report 1 "$1" "got:  $2" "want: $3"
	fi
}

like() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then _report 0 "$1"; else
		_report 1 "$1" "text: $2" "want match: $3"
	fi
}

unlike() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		_report 1 "$1" "text: $2" "want no match: $3"
	else _report 0 "$1"; fi
}

done_testing() {
	echo "1..$T_N"
	[ "$T_FAIL" = 0 ]
}

# free_port - a TCP port nobody listens on right now
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS] - until something accepts on 127.0.0.1:PORT
wait_port() {
	i=0
	while [ $i -lt $((${2:-10} * 20)) ]; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# wait_file PATH [SECONDS] - until the file exists and is not empty
wait_file() {
	i=0
	while [ ! -s "$1" ]; do
		[ $i -ge $((${2:-10} * 20)) ] && return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 0
}

# wait_gone PID [SECONDS] - until the process has exited
wait_gone() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		[ $i -ge $((${2:-10} * 20)) ] && return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 0
}

# stop_pid PID - SIGTERM, then SIGKILL after 10 s
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	wait_gone "$1" 10 || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

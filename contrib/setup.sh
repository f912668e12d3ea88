#!/bin/sh
# setup.sh - set up a fresh Debian 12 machine (as root) and either run
# authgate on its built-in defaults or run the whole test suite.
#
#   sh contrib/setup.sh run    install build packages, build, create the
#                              authgate user, run authgate -f (foreground)
#   sh contrib/setup.sh test   install build and test packages, then
#                              tests/run-all (every test, two builds)
#   sh contrib/setup.sh deps [run|test|bench]   only install the packages
#                              (bench: what make bench compares with)
set -eu
cd "$(dirname "$0")/.."
mode=${1:-run}

BUILD_PKGS="build-essential autoconf automake pkg-config
 libmilter-dev libopendkim-dev libspf2-dev libssl-dev libunbound-dev
 libpcre2-dev libsqlite3-dev libidn2-dev libpq-dev zlib1g-dev libcmocka-dev
 libmicrohttpd-dev"
# make bench: the milters authgate is compared with, and perf to profile
BENCH_PKGS="opendkim opendkim-tools opendmarc python3-dkim python3-nacl
 python3-dnslib linux-perf strace"
TEST_PKGS="postfix sasl2-bin swaks knot-dnsutils python3 python3-milter
 python3-dnslib python3-dnspython python3-dkim python3-spf python3-nacl
 python3-yaml opendkim opendkim-tools
 clang libclang-rt-14-dev libxml2-utils postgresql
 debhelper dpkg-dev systemd"

apt_install() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "setup: installing$missing"
	# Postfix must not ask questions nor create a system instance: the
	# tests run private instances and nothing else.
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
	# Daemons pulled in as test peers must not start as system services.
	made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || echo "setup: apt-get update failed, trying with the cached lists"
	# shellcheck disable=SC2086
	apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends $missing
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
	return 0
}

build() {
	[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
	mkdir -p build
	cd build
	[ -f Makefile ] || ../configure --sysconfdir=/etc --localstatedir=/var
	make -j"$(nproc)"
	cd ..
}

case "$mode" in
run)
	# shellcheck disable=SC2086
	apt_install $BUILD_PKGS
	build
	if ! getent passwd authgate >/dev/null; then
		echo "setup: creating the system user authgate"
		useradd --system --user-group --no-create-home \
		    --home-dir /nonexistent --shell /usr/sbin/nologin authgate
	fi
	echo "setup: starting authgate in the foreground (Ctrl-C stops it)"
	exec build/filter/authgate -f
	;;
test)
	# shellcheck disable=SC2086
	apt_install $BUILD_PKGS $TEST_PKGS
	# mailauth (npm), a DKIM/DMARC peer of the interop tests; without it
	# those tests fail, they are not skipped
	sh tests/integration/peers/setup-node.sh ||
	    echo "setup: mailauth could not be installed (see above)"
	exec tests/run-all
	;;
deps)
	# shellcheck disable=SC2086
	case "${2:-test}" in
	run) apt_install $BUILD_PKGS ;;
	bench) apt_install $BUILD_PKGS $BENCH_PKGS ;;
	*) apt_install $BUILD_PKGS $TEST_PKGS ;;
	esac
	;;
*)
	echo "usage: sh contrib/setup.sh run|test|deps [run|test|bench]" >&2
	exit 2
	;;
esac

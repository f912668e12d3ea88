#!/bin/sh
# setup-node.sh - install mailauth, the Node.js DKIM peer of the DKIM
# interoperability tests, at the pinned version into
# ${AUTHGATE_TEST_CACHE:-/var/cache/authgate-tests}/node (npm's download
# cache: .../npm-cache; nothing else is written).  Idempotent: does nothing when that version is already there.
# Needs node >= 20.18.1 (mailauth's "engines") and npm, and the npm registry
# once.  Run as root (or as whoever owns the cache dir):
#
#   sh tests/integration/peers/setup-node.sh
#
# Exit status 0 when mailauth MAILAUTH_VERSION is installed afterwards.
set -eu

MAILAUTH_VERSION=4.13.3
cache=${AUTHGATE_TEST_CACHE:-/var/cache/authgate-tests}
prefix=$cache/node

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "setup-node: node and npm are needed (Node.js >= 20.18.1)" >&2
	exit 1
fi
if ! node -e '
	const [a, b, c] = process.versions.node.split(".").map(Number);
	process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1);'
then
	echo "setup-node: node $(node --version) is too old for mailauth" \
	    "$MAILAUTH_VERSION (needs >= 20.18.1)" >&2
	exit 1
fi

have=$(node -e '
	try { console.log(require(process.argv[1]).version); } catch (e) {}' \
	"$prefix/node_modules/mailauth/package.json")
if [ "$have" = "$MAILAUTH_VERSION" ]; then
	echo "setup-node: mailauth $have already in $prefix"
	exit 0
fi

echo "setup-node: installing mailauth@$MAILAUTH_VERSION into $prefix"
mkdir -p "$prefix"
# npm's own download cache goes to the cache dir too, not to ~/.npm
npm install --prefix "$prefix" --cache "$cache/npm-cache" --save-exact \
    --no-audit --no-fund --no-update-notifier --loglevel=error \
    "mailauth@$MAILAUTH_VERSION"
have=$(node -e 'console.log(require(process.argv[1]).version)' \
	"$prefix/node_modules/mailauth/package.json")
if [ "$have" != "$MAILAUTH_VERSION" ]; then
	echo "setup-node: installed mailauth is $have, not $MAILAUTH_VERSION" >&2
	exit 1
fi
echo "setup-node: mailauth $have installed in $prefix"

#!/bin/sh
# needed-libs.sh - the -l flags an archive of filter objects needs.
#
# Reads the symbols the archive leaves undefined (minus those it defines
# itself) and maps each library's namespace to its -l flag. Prints the
# flags on one line. Used by fuzz.mk so a new module (spf.c, dkim_*.c, ...)
# links without editing the fuzz build.
lib=${1:?usage: needed-libs.sh ARCHIVE}
def=$(mktemp) || exit 1
trap 'rm -f "$def"' EXIT
nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' |
    sort -u >"$def"
nm -u "$lib" 2>/dev/null | awk 'NF >= 2 { print $NF }' | sort -u |
    comm -23 - "$def" | awk '
/^ub_/				{ f["-lunbound"] = 1 }
/^SPF_/				{ f["-lspf2"] = 1 }
/^dkim_/			{ f["-lopendkim"] = 1 }
/^pcre2_/			{ f["-lpcre2-8"] = 1 }
/^sqlite3_/			{ f["-lsqlite3"] = 1 }
/^idn2_/				{ f["-lidn2"] = 1 }
/^PQ/				{ f["-lpq"] = 1 }
/^smfi_/			{ f["-lmilter"] = 1 }
/^MHD_/				{ f["-lmicrohttpd"] = 1 }
/^(deflate|inflate|gz)/		{ f["-lz"] = 1 }
/^(PQ[a-z]|lo_)/		{ f["-lpq"] = 1 }
/^idn2_/			{ f["-lidn2"] = 1 }
/^(EVP_|RSA_|BIO_|PEM_|ERR_|OPENSSL_|CRYPTO_|X509_|BN_|EC_|SHA[0-9]|ED25519|d2i_|i2d_|RAND_)/ \
				{ f["-lcrypto"] = 1 }
END { for (k in f) printf "%s ", k; printf "\n" }'

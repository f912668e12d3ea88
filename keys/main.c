/*
 * main.c - authgate-keys: the command line, help, generate and show.
 *
 * authgate-keys is run by an administrator, not by the daemon. It writes
 * only the two files generate is asked for, and talks to no one but the
 * DNS servers authgate.conf names (check, in check.c).
 */
#include <sys/stat.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autoconf.h" /* PACKAGE_VERSION */

#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "keyfile.h"
#include "keyrec.h"
#include "keytool.h"

#define AG_KEYTOOL_GENERATE 0x1
#define AG_KEYTOOL_CHECK    0x2
#define AG_KEYTOOL_SHOW	    0x4
#define AG_KEYTOOL_ALL	    0x7

#define AG_DNS_LABEL_MAX 63 /* RFC 1035 2.3.4 */

/* The commands, with what each one's --help says. */
static const struct keytool_cmd {
	const char *name;
	unsigned bit;
	const char *help;
} keytool_cmds[] = {
    {"generate", AG_KEYTOOL_GENERATE,
	"usage: authgate-keys generate --domain D --selector S\n"
	"           [--type rsa|ed25519] [--bits N] [--dir DIR] [--force]\n"
	"\n"
	"Create a DKIM key pair for signing mail of domain D with selector\n"
	"S: DIR/S.private, the private key (PKCS#8 PEM, mode 0600), and\n"
	"DIR/S.txt, its DNS record in zone-file form. Print the KeyTable and\n"
	"SigningTable lines for authgate and the DNS record.\n"
	"\n"
	"  -d, --domain D     the signing domain (d=)\n"
	"  -s, --selector S   the selector (s=); also the file names\n"
	"      --type T       rsa (default) or ed25519 (RFC 8463)\n"
	"  -b, --bits N       RSA key size, 1024 to 8192 (default 2048);\n"
	"                     RFC 8301 forbids less than 1024\n"
	"  -D, --dir DIR      where to write the files (default .)\n"
	"  -f, --force        replace existing files\n"},
    {"check", AG_KEYTOOL_CHECK,
	"usage: authgate-keys check --domain D --selector S --key FILE\n"
	"           [-c CONF] [-o name=value]...\n"
	"\n"
	"Look up the key record S._domainkey.D through the DNS servers of\n"
	"authgate.conf (dns_servers, dns_timeout) and compare it with the\n"
	"private key in FILE. Print \"key OK: D/S TYPE BITS\" and exit 0 when\n"
	"DNS publishes the public half of FILE; otherwise say what is wrong\n"
	"on one line and exit 1.\n"
	"\n"
	"  -d, --domain D     the signing domain\n"
	"  -s, --selector S   the selector\n"
	"  -k, --key FILE     the private key (not readable by others)\n"
	"  -c CONF            authgate.conf (default " AG_SYSCONFDIR
	"/authgate/authgate.conf)\n"
	"  -o name=value      override a parameter, e.g.\n"
	"                     -o dns_servers=127.0.0.1@5353\n"},
    {"show", AG_KEYTOOL_SHOW,
	"usage: authgate-keys show --key FILE [--domain D --selector S]\n"
	"\n"
	"Print the DNS record for the private key in FILE, as generate writes\n"
	"it to S.txt. Without --domain and --selector, print only the quoted\n"
	"strings of the record.\n"
	"\n"
	"  -k, --key FILE     the private key\n"
	"  -d, --domain D     the signing domain\n"
	"  -s, --selector S   the selector\n"},
};

/* Which command may be given which option. */
static const struct {
	int ch;
	const char *name;
	unsigned cmds;
} keytool_optcmds[] = {
    {'d', "--domain", AG_KEYTOOL_ALL},
    {'s', "--selector", AG_KEYTOOL_ALL},
    {'t', "--type", AG_KEYTOOL_GENERATE},
    {'b', "--bits", AG_KEYTOOL_GENERATE},
    {'D', "--dir", AG_KEYTOOL_GENERATE},
    {'f', "--force", AG_KEYTOOL_GENERATE},
    {'k', "--key", AG_KEYTOOL_CHECK | AG_KEYTOOL_SHOW},
    {'c', "-c", AG_KEYTOOL_CHECK},
    {'o', "-o", AG_KEYTOOL_CHECK},
};

/* keytool_err - one line on stderr, prefixed with the program's name */
void
keytool_err(const char *fmt, ...)
{
	va_list ap;

	fputs("authgate-keys: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* keytool_usage - the synopsis of every command */
static void
keytool_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: authgate-keys generate --domain D --selector S "
	    "[--type rsa|ed25519]\n"
	    "           [--bits N] [--dir DIR] [--force]\n"
	    "       authgate-keys check --domain D --selector S --key FILE\n"
	    "           [-c CONF] [-o name=value]...\n"
	    "       authgate-keys show --key FILE [--domain D --selector S]\n"
	    "       authgate-keys help [COMMAND] | --version\n");
}

/* keytool_help - the overview */
static void
keytool_help(void)
{
	keytool_usage(stdout);
	printf("\n"
	       "Manage the DKIM keys authgate signs with.\n"
	       "  generate  create a key pair and its DNS record; print the\n"
	       "            KeyTable, SigningTable and DNS lines to add\n"
	       "  check     compare the key record in DNS with a private key\n"
	       "  show      print the DNS record for a private key\n"
	       "\n"
	       "Exit status: 0 done (check: DNS has the key), 1 failed,\n"
	       "2 usage or configuration error. 'authgate-keys help COMMAND'\n"
	       "describes each command; see also authgate-keys(8).\n");
}

/* keytool_find_cmd - a command by name, or NULL */
static const struct keytool_cmd *
keytool_find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(keytool_cmds) / sizeof(keytool_cmds[0]); i++)
		if (strcmp(keytool_cmds[i].name, name) == 0)
			return &keytool_cmds[i];
	return NULL;
}

/* keytool_name_check - RFC 6376 3.5 sub-domains: NULL, or what is wrong */
static const char *
keytool_name_check(const char *s, bool domain)
{
	size_t label = 0, labels = 1, i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80)
			return "use the A-label (xn--...) of an "
			       "internationalized name";
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				break;
			label = 0;
			labels++;
			continue;
		}
		if (!str_isalnum(c) && c != '-')
			break;
		if (c == '-' && label == 0)
			break;
		if (++label > AG_DNS_LABEL_MAX)
			return "a label is longer than 63 bytes";
	}
	if (s[i] != '\0' || label == 0 || s[i - 1] == '-')
		return "labels of letters, digits and inner hyphens, "
		       "separated by dots";
	if (domain && labels < 2)
		return "a domain name has at least two labels (RFC 6376 3.5)";
	return NULL;
}

/* keytool_owner - the record's name, without the final dot */
char *
keytool_owner(const struct keytool_opts *o)
{
	return xasprintf("%s._domainkey.%s", o->selector, o->domain);
}

/* keytool_load - keyfile_load with the messages printed */
int
keytool_load(
    const char *path, bool others_fatal, int min_bits, struct keyfile *kf)
{
	struct buf warn = BUF_INIT;
	char why[1024], *line, *nl;
	int rc;

	rc = keyfile_load(
	    path, others_fatal, min_bits, kf, &warn, why, sizeof(why));
	for (line = warn.data; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		keytool_err("warning: %.*s", (int)(nl - line), line);
	if (rc == -1)
		keytool_err("%s", why);
	buf_release(&warn);
	return rc;
}

/* keytool_record - S.txt's text (owner NULL: the quoted strings only) */
static int
keytool_record(
    EVP_PKEY *pkey, enum keyfile_type t, const char *owner, struct buf *out)
{
	struct buf value = BUF_INIT;
	char *p64, *abs;

	if ((p64 = keyfile_dns_key(pkey, t)) == NULL) {
		keytool_err("cannot encode the public key");
		return -1;
	}
	keyrec_value(&value, keyfile_type_name(t), p64);
	abs = owner ? xasprintf("%s.", owner) : NULL;
	keyrec_zone(out, abs, value.data);
	free(abs);
	free(p64);
	buf_release(&value);
	return 0;
}

/* keytool_gen_bits - --type and --bits; -1 after a usage message */
static int
keytool_gen_bits(const struct keytool_opts *o, enum keyfile_type *t, int *bits)
{
	unsigned long long n = AG_KEYFILE_RSA_DEF_BITS;

	*t = AG_KEYFILE_RSA;
	if (o->type != NULL && keyfile_type_parse(o->type, t) == -1) {
		keytool_err("generate: --type '%s': rsa or ed25519", o->type);
		return -1;
	}
	if (o->bits != NULL && *t == AG_KEYFILE_ED25519)
		keytool_err(
		    "warning: --bits ignored: ed25519 keys have one size");
	else if (o->bits != NULL) {
		if (str_parse_uint(o->bits, strlen(o->bits), 1u << 20, &n) ==
		    -1) {
			keytool_err(
			    "generate: --bits '%s' is not a number", o->bits);
			return -1;
		}
		if (n < AG_KEYFILE_RSA_MIN_BITS) {
			keytool_err(
			    "generate: --bits %llu: RFC 8301 3.2 forbids "
			    "RSA keys under %d bits for DKIM (use %d)",
			    n, AG_KEYFILE_RSA_MIN_BITS,
			    AG_KEYFILE_RSA_DEF_BITS);
			return -1;
		}
		if (n > AG_KEYFILE_RSA_MAX_BITS) {
			keytool_err("generate: --bits %llu: at most %d", n,
			    AG_KEYFILE_RSA_MAX_BITS);
			return -1;
		}
	}
	*bits = (int)n;
	return 0;
}

/* keytool_gen_print - what to add where */
static void
keytool_gen_print(const struct keytool_opts *o, enum keyfile_type t, int bits,
    const char *priv, const char *txt, const char *record)
{
	char *owner = keytool_owner(o);

	if (t == AG_KEYFILE_RSA)
		printf("Generated a %d-bit rsa key", bits);
	else
		printf("Generated an ed25519 key");
	printf(" for %s, selector %s.\n", o->domain, o->selector);
	printf("Private key: %s (mode 0600)\n", priv);
	printf("DNS record:  %s\n\n", txt);
	printf("KeyTable line:\n%s %s:%s:%s\n\n", owner, o->domain, o->selector,
	    priv);
	printf("SigningTable line:\n*@%s %s\n\n", o->domain, owner);
	printf("DNS TXT record (publish it in the zone of %s):\n%s\n",
	    o->domain, record);
	printf("Then: give %s to the user authgate runs as (chown),\n"
	       "publish the record, and once it is visible run\n"
	       "  authgate-keys check --domain %s --selector %s --key %s\n",
	    priv, o->domain, o->selector, priv);
	free(owner);
}

/* keytool_gen_paths - DIR/S.private and DIR/S.txt, DIR made absolute */
static int
keytool_gen_paths(const struct keytool_opts *o, char **priv, char **txt)
{
	const char *dir = o->dir ? o->dir : ".";
	char abs[PATH_MAX], *slash;
	struct stat st;

	if (realpath(dir, abs) == NULL || stat(abs, &st) == -1) {
		keytool_err(
		    "cannot use directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		keytool_err("cannot use directory %s: not a directory", dir);
		return -1;
	}
	slash = strcmp(abs, "/") == 0 ? "" : "/";
	*priv = xasprintf("%s%s%s.private", abs, slash, o->selector);
	*txt = xasprintf("%s%s%s.txt", abs, slash, o->selector);
	return 0;
}

/* keytool_generate - `authgate-keys generate` */
static int
keytool_generate(const struct keytool_opts *o)
{
	struct buf rec = BUF_INIT;
	enum keyfile_type t;
	EVP_PKEY *pkey = NULL;
	char *priv = NULL, *txt = NULL, *owner = NULL, why[1024];
	struct stat st;
	int bits, rc = AG_KEYTOOL_EX_FAIL;

	if (keytool_gen_bits(o, &t, &bits) == -1)
		return AG_KEYTOOL_EX_USAGE;
	if (keytool_gen_paths(o, &priv, &txt) == -1)
		goto out;
	if (!o->force && (lstat(priv, &st) == 0 || lstat(txt, &st) == 0)) {
		keytool_err("%s exists: use --force to replace it (the old key "
			    "then stops working)",
		    lstat(priv, &st) == 0 ? priv : txt);
		goto out;
	}
	if ((pkey = keyfile_generate(t, bits, why, sizeof(why))) == NULL) {
		keytool_err("%s", why);
		goto out;
	}
	owner = keytool_owner(o);
	if (keytool_record(pkey, t, owner, &rec) == -1)
		goto out;
	if (keyfile_write(priv, pkey, o->force, why, sizeof(why)) == -1) {
		keytool_err("%s", why);
		goto out;
	}
	if (keyfile_put(txt, rec.data, rec.len, 0644, o->force, why,
		sizeof(why)) == -1) {
		keytool_err("%s", why);
		if (!o->force)
			unlink(priv); /* no key without its record */
		goto out;
	}
	buf_setlen(&rec, rec.len - 1); /* the final newline */
	keytool_gen_print(o, t, bits, priv, txt, rec.data);
	rc = AG_KEYTOOL_EX_OK;
out:
	EVP_PKEY_free(pkey);
	buf_release(&rec);
	free(owner);
	free(priv);
	free(txt);
	return rc;
}

/* keytool_show - `authgate-keys show` */
static int
keytool_show(const struct keytool_opts *o)
{
	struct buf rec = BUF_INIT;
	struct keyfile kf;
	char *owner = NULL;
	int rc = AG_KEYTOOL_EX_FAIL;

	if (keytool_load(o->key, false, AG_KEYFILE_RSA_MIN_BITS, &kf) == -1)
		return AG_KEYTOOL_EX_FAIL;
	if (o->domain != NULL)
		owner = keytool_owner(o);
	if (keytool_record(kf.pkey, kf.type, owner, &rec) == 0) {
		fputs(rec.data, stdout);
		rc = AG_KEYTOOL_EX_OK;
	}
	free(owner);
	buf_release(&rec);
	keyfile_release(&kf);
	return rc;
}

/* keytool_opt_allowed - may this command take option ch? */
static bool
keytool_opt_allowed(const struct keytool_cmd *c, int ch)
{
	size_t i;

	for (i = 0; i < sizeof(keytool_optcmds) / sizeof(keytool_optcmds[0]);
	     i++)
		if (keytool_optcmds[i].ch == ch) {
			if (keytool_optcmds[i].cmds & c->bit)
				return true;
			keytool_err("%s: %s is not an option of this command",
			    c->name, keytool_optcmds[i].name);
			return false;
		}
	return true;
}

/* keytool_parse - the options after the command; -1 after a message */
static int
keytool_parse(
    const struct keytool_cmd *c, int argc, char **argv, struct keytool_opts *o)
{
	static const struct option lo[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"type", required_argument, NULL, 't'},
	    {"bits", required_argument, NULL, 'b'},
	    {"dir", required_argument, NULL, 'D'},
	    {"force", no_argument, NULL, 'f'},
	    {"key", required_argument, NULL, 'k'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":d:s:b:D:fk:c:o:h", lo, NULL)) !=
	    -1) {
		if (ch == '?' || ch == ':') {
			keytool_err("%s: %s '%s'", c->name,
			    ch == '?' ? "unknown option" : "missing value for",
			    argv[optind - 1]);
			return -1;
		}
		if (ch == 'h') {
			fputs(c->help, stdout);
			exit(AG_KEYTOOL_EX_OK);
		}
		if (!keytool_opt_allowed(c, ch))
			return -1;
		switch (ch) {
		case 'd':
			o->domain = optarg;
			break;
		case 's':
			o->selector = optarg;
			break;
		case 't':
			o->type = optarg;
			break;
		case 'b':
			o->bits = optarg;
			break;
		case 'D':
			o->dir = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'c':
			o->conf = optarg;
			break;
		case 'o':
			o->overrides = xreallocarray(
			    o->overrides, o->noverrides + 1, sizeof(char *));
			o->overrides[o->noverrides++] = optarg;
			break;
		}
	}
	if (optind < argc) {
		keytool_err(
		    "%s: unexpected argument '%s'", c->name, argv[optind]);
		return -1;
	}
	return 0;
}

/* keytool_validate - what each command requires; -1 after a message */
static int
keytool_validate(const struct keytool_cmd *c, struct keytool_opts *o)
{
	const char *why;
	size_t n;

	if (c->bit != AG_KEYTOOL_SHOW && o->domain == NULL) {
		keytool_err("%s: --domain is required", c->name);
		return -1;
	}
	if (c->bit != AG_KEYTOOL_SHOW && o->selector == NULL) {
		keytool_err("%s: --selector is required", c->name);
		return -1;
	}
	if ((o->domain == NULL) != (o->selector == NULL)) {
		keytool_err("%s: --domain and --selector go together", c->name);
		return -1;
	}
	if (c->bit != AG_KEYTOOL_GENERATE && o->key == NULL) {
		keytool_err("%s: --key is required", c->name);
		return -1;
	}
	if (o->domain == NULL)
		return 0;
	/* one final dot is the absolute form of the same name */
	n = strlen(o->domain);
	if (n > 1 && o->domain[n - 1] == '.')
		o->domain = o->domain_copy = xstrndup(o->domain, n - 1);
	if ((why = keytool_name_check(o->domain, true)) != NULL) {
		keytool_err("%s: --domain '%s': %s", c->name, o->domain, why);
		return -1;
	}
	if ((why = keytool_name_check(o->selector, false)) != NULL) {
		keytool_err(
		    "%s: --selector '%s': %s", c->name, o->selector, why);
		return -1;
	}
	if (strlen(o->selector) + strlen("._domainkey.") + strlen(o->domain) >
	    253) {
		keytool_err("%s: %s._domainkey.%s is longer than 253 bytes",
		    c->name, o->selector, o->domain);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const struct keytool_cmd *c;
	struct keytool_opts o;
	int rc;

	if (argc < 2) {
		keytool_usage(stderr);
		return AG_KEYTOOL_EX_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("authgate-keys %s\n", PACKAGE_VERSION);
		return AG_KEYTOOL_EX_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		if (argc > 2 && (c = keytool_find_cmd(argv[2])) != NULL)
			fputs(c->help, stdout);
		else
			keytool_help();
		return AG_KEYTOOL_EX_OK;
	}
	if ((c = keytool_find_cmd(argv[1])) == NULL) {
		keytool_err(
		    "unknown command '%s' (generate, check or show)", argv[1]);
		keytool_usage(stderr);
		return AG_KEYTOOL_EX_USAGE;
	}
	memset(&o, 0, sizeof(o));
	o.cmd = c->name;
	if (keytool_parse(c, argc - 1, argv + 1, &o) == -1 ||
	    keytool_validate(c, &o) == -1) {
		fprintf(stderr, "Try 'authgate-keys help %s'.\n", c->name);
		rc = AG_KEYTOOL_EX_USAGE;
	} else if (c->bit == AG_KEYTOOL_GENERATE)
		rc = keytool_generate(&o);
	else if (c->bit == AG_KEYTOOL_SHOW)
		rc = keytool_show(&o);
	else
		rc = keytool_check(&o);
	free(o.overrides);
	free(o.domain_copy);
	return rc;
}

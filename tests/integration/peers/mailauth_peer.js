#!/usr/bin/env node
/*
 * mailauth_peer.js - mailauth (postalsys/mailauth) as a DKIM peer for the
 * interoperability tests: signs and verifies a batch of messages in one
 * process.  Driven by dkim_kit.Mailauth; see peers/README.md.
 *
 *   node mailauth_peer.js JOBS.json     (results: JSON on standard output)
 *
 * JOBS.json:
 *   {"mailauth": "/path/to/node_modules/mailauth",
 *    "dns": "127.0.0.1:PORT",          DNS server for key records, or
 *    "zone": {"name.": [["s1", "s2"], ...]},   a static TXT map instead
 *    "jobs": [
 *      {"op": "sign", "in": FILE, "out": FILE, "canon": "relaxed/relaxed",
 *       "time": UNIX_SECONDS (t=; default: now, fixed once per job),
 *       "keys": [{"domain": D, "selector": S, "key": PEM_FILE,
 *                 "algorithm": "rsa-sha256" | "ed25519-sha256"}]},
 *      {"op": "verify", "in": FILE, "minBits": 1024}
 *    ]}
 *
 * Output: {"version": "4.13.3", "node": "v20...", "results": [...]}, one
 * result per job, in order:
 *   sign:   {"ok": true} (the signed message is written to "out": the
 *           DKIM-Signature header fields, one per key in the order given,
 *           then the input unchanged; line ends follow the input's) or
 *           {"ok": false, "error": "..."}
 *   verify: {"ok": true, "signatures": [{"domain", "selector", "algorithm",
 *           "b", "result", "comment", "info"}]} (one per DKIM-Signature,
 *           in header order; [] when the message is not signed)
 *
 * Nothing here ever asks the real DNS: every lookup goes to "dns" or to
 * the static "zone"; a name missing from the zone is ENOTFOUND.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const dnsPromises = require('node:dns').promises;

function makeResolver(spec) {
    if (spec.zone) {
        const zone = {};
        for (const [name, recs] of Object.entries(spec.zone)) {
            zone[name.toLowerCase().replace(/\.$/, '')] = recs;
        }
        return async (name, type) => {
            const recs = zone[String(name).toLowerCase().replace(/\.$/, '')];
            if (type !== 'TXT' || !recs) {
                const err = new Error(`queryTxt ENOTFOUND ${name}`);
                err.code = 'ENOTFOUND';
                throw err;
            }
            return recs;
        };
    }
    if (!spec.dns) {
        throw new Error('neither "dns" nor "zone" given: refusing to use the system resolver');
    }
    const r = new dnsPromises.Resolver({ timeout: 3000, tries: 2 });
    r.setServers([spec.dns]);
    return (name, type) => r.resolve(name, type);
}

function eolOf(buf) {
    const head = buf.subarray(0, Math.min(buf.length, 65536)).toString('latin1');
    const i = head.indexOf('\n');
    return i > 0 && head[i - 1] === '\r' ? '\r\n' : i >= 0 ? '\n' : '\r\n';
}

async function signJob(mod, job) {
    const input = fs.readFileSync(job.in);
    const signatureData = job.keys.map(k => ({
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: fs.readFileSync(k.key),
        algorithm: k.algorithm,
        canonicalization: job.canon
    }));
    // Always a fixed signTime: without one, mailauth 4.13.3 takes t= from
    // Date.now() twice (lib/tools.js formatSignatureHeaderLine), once for
    // the header it hashes and once for the header it emits; a second
    // boundary in between makes a signature that never verifies.
    const opts = {
        canonicalization: job.canon,
        signatureData,
        signTime: new Date((job.time || Math.floor(Date.now() / 1000)) * 1000)
    };
    const res = await mod.dkimSign(input, opts);
    if (res.errors && res.errors.length) {
        return { ok: false, error: res.errors.map(e => e.message || String(e)).join('; ') };
    }
    let sigs = res.signatures;
    if (!sigs || !/DKIM-Signature/i.test(sigs)) {
        return { ok: false, error: 'no signature produced' };
    }
    if (eolOf(input) === '\n') {
        sigs = sigs.replace(/\r\n/g, '\n');
    }
    fs.writeFileSync(job.out, Buffer.concat([Buffer.from(sigs, 'latin1'), input]));
    return { ok: true };
}

async function verifyJob(mod, job, resolver) {
    const input = fs.readFileSync(job.in);
    const res = await mod.dkimVerify(input, { resolver, minBitLength: job.minBits || 1024 });
    const signatures = [];
    for (const r of res.results || []) {
        if (!r.signingDomain && r.status && r.status.result === 'none') {
            continue; // "message not signed"
        }
        signatures.push({
            domain: r.signingDomain || '',
            selector: r.selector || '',
            algorithm: r.algo || '',
            b: (r.signature || '').replace(/\s+/g, ''),
            result: (r.status && r.status.result) || '',
            comment: (r.status && r.status.comment) || '',
            info: r.info || ''
        });
    }
    return { ok: true, signatures };
}

async function main() {
    const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const root = spec.mailauth;
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const mod = {
        dkimSign: require(path.join(root, 'lib/dkim/sign')).dkimSign,
        dkimVerify: require(path.join(root, 'lib/dkim/verify')).dkimVerify
    };
    const resolver = makeResolver(spec);
    const results = [];
    for (const job of spec.jobs) {
        try {
            if (job.op === 'sign') {
                results.push(await signJob(mod, job));
            } else if (job.op === 'verify') {
                results.push(await verifyJob(mod, job, resolver));
            } else {
                results.push({ ok: false, error: `unknown op ${job.op}` });
            }
        } catch (err) {
            results.push({ ok: false, error: (err && err.stack) || String(err) });
        }
    }
    process.stdout.write(JSON.stringify({ version: pkg.version, node: process.version, results }) + '\n');
}

main().catch(err => {
    process.stderr.write(`mailauth_peer: ${(err && err.stack) || err}\n`);
    process.exit(1);
});

#!/usr/bin/env node
/*
 * mailauth_dmarc.js - mailauth (postalsys/mailauth) as the DMARC peer of
 * test_dmarc_mailauth.py: runs mailauth's whole receiving-side check,
 * authenticate() (DKIM, SPF, then DMARC from their results), on a batch
 * of messages and prints what it found.  ARC and BIMI are switched off.
 *
 *   node mailauth_dmarc.js JOBS.json     (results: JSON on standard output)
 *
 * JOBS.json:
 *   {"mailauth": "/path/to/node_modules/mailauth",
 *    "jobs": [{"in": FILE, "dns": "127.0.0.1:PORT", "ip": "192.0.2.10",
 *              "helo": "mx.example.net", "sender": "a@example.net" or "",
 *              "mta": "mailauth.test"}]}
 *
 * Every lookup of a job goes to its "dns" server (the test's loopback
 * DnsServer, one per scenario); nothing here ever asks the system's
 * resolver, and a job without "dns" is refused.
 *
 * Output: {"version": "4.13.3", "node": "v20...", "results": [...]}, one
 * per job: {"ok": true, "dmarc": false | {"result", "policy", "domain",
 * "headerFrom", "p", "sp", "rr", "spfAligned", "dkimAligned", "error"},
 * "spf": {"result", "domain"}, "dkim": [{"domain", "result"}], "info":
 * the A-R header mailauth built} or {"ok": false, "error": "..."}.
 * "policy" is null when mailauth returned none.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const dnsPromises = require('node:dns').promises;

function resolverFor(server) {
    if (!server) {
        throw new Error('job without "dns": refusing to use the system resolver');
    }
    const r = new dnsPromises.Resolver({ timeout: 1500, tries: 1 });
    r.setServers([server]);
    return (name, type) => r.resolve(name, type);
}

function opt(v) {
    return v === undefined ? null : v;
}

async function runJob(authenticate, job) {
    const input = fs.readFileSync(job.in);
    const res = await authenticate(input, {
        ip: job.ip,
        helo: job.helo,
        sender: job.sender,
        mta: job.mta || 'mailauth.test',
        resolver: resolverFor(job.dns),
        minBitLength: 1024,
        disableArc: true,
        disableBimi: true
    });
    const d = res.dmarc;
    return {
        ok: true,
        dmarc: d
            ? {
                  result: (d.status && d.status.result) || null,
                  policy: opt(d.policy),
                  domain: opt(d.domain),
                  headerFrom: opt(d.status && d.status.header && d.status.header.from),
                  p: opt(d.p),
                  sp: opt(d.sp),
                  rr: opt(d.rr),
                  spfAligned: opt(d.alignment && d.alignment.spf && d.alignment.spf.result),
                  dkimAligned: opt(d.alignment && d.alignment.dkim && d.alignment.dkim.result),
                  error: opt(d.error)
              }
            : false,
        spf: res.spf ? { result: res.spf.status && res.spf.status.result, domain: opt(res.spf.domain) } : null,
        dkim: ((res.dkim && res.dkim.results) || []).map(r => ({
            domain: r.signingDomain || '',
            result: (r.status && r.status.result) || ''
        })),
        info: res.headers
    };
}

async function main() {
    const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const root = spec.mailauth;
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const { authenticate } = require(path.join(root, 'lib/mailauth'));
    const results = [];
    for (const job of spec.jobs) {
        try {
            results.push(await runJob(authenticate, job));
        } catch (err) {
            results.push({ ok: false, error: (err && err.stack) || String(err) });
        }
    }
    process.stdout.write(JSON.stringify({ version: pkg.version, node: process.version, results }) + '\n');
}

main().catch(err => {
    process.stderr.write(`mailauth_dmarc: ${(err && err.stack) || err}\n`);
    process.exit(1);
});

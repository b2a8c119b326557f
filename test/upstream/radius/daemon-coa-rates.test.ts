// tier: peers; needs freeradius radclient
/**
 * Rates: a RADIUS CoA-Request from FreeRADIUS's radclient to the real daemon (dist/sluice.mjs) changes
 * a live session's speed tier in the kernel, by ubus `change`'s path, without a deauth: the ACK comes once the new
 * rates are in force, so the tc class (download) and the nft limit (upload) read right after it already show them.
 * The shaper drives the real tc and nft in a network namespace of its own (a veth end as the LAN device). Then the
 * refusals: a bad rate beside a good total changes neither, and a router that cannot shape answers 506.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { radclient } from '../../peers/freeradius.ts';
import { mac, radiusDaemonSuite, type RadiusLab } from './daemon-lab.ts';
import { skipTest } from '../../helpers/skip.ts';

const TIER = `
config pricing 'tier'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
\toption min_steps '1'
\toption max_steps '1440'
\toption rate_down '2mbit'
\toption rate_up '1mbit'
`;
const root = process.getuid?.() === 0;
const have = (cmd: string, arg: string) => spawnSync(cmd, [arg]).status === 0;
const ns = `sluice-coa-${randomBytes(3).toString('hex')}`;
const inNs = (cmd: string, args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });

/** The download class rates on the LAN device, as tc shows them (`2Mbit`). */
const classRates = (): string[] =>
  [...inNs('tc', ['class', 'show', 'dev', 'lan0']).matchAll(/ rate (\S+) ceil/g)].map((m) => m[1]!);
/** The client's upload limit in sluice's nft table, bytes per second. */
function uploadLimit(m: string): number | null {
  const table = JSON.parse(inNs('nft', ['-j', 'list', 'table', 'inet', 'sluice_rate'])) as {
    nftables: Array<Record<string, { name?: string; rate?: number; per?: string; rate_unit?: string }>>;
  };
  const limit = table.nftables.map((o) => o.limit).find((l) => l?.name === `u_${m.replace(/:/g, '')}`);
  if (limit?.rate === undefined) return null;
  const unit = { bytes: 1, kbytes: 1024, mbytes: 1024 ** 2 }[limit.rate_unit ?? 'bytes'] ?? NaN;
  return limit.rate * unit;
}

async function grantTier(c: RadiusLab, m: string): Promise<string> {
  const g = await c.lab.call('grant', { mac: m, seconds: 600, plan: 'tier' });
  await c.lab.waitFor(() => c.lab.clientState(m) === 'Authenticated', 30_000, `gate of ${m}`);
  return (g.session as Record<string, unknown>).id as string;
}

if (!root || !have('tc', '-V') || !have('nft', '--version') || !have('ip', '-V')) {
  // A counted skip (the file has no other test); CI runs as root with tc, nft and ip installed.
  const skipped = suite('radius daemon CoA rates (real tc and nft)');
  skipTest(skipped, 'CoA rates against the real kernel', `needs root, tc, nft and ip (root=${root})`, {
    ciInstalls: true,
  });
  skipped.run();
} else {
  const t = radiusDaemonSuite(
    'radius daemon CoA rates (real tc and nft)',
    `
config sluice 'main'
\toption tc 'ip netns exec ${ns} tc'
\toption nft 'ip netns exec ${ns} nft'
\toption shape_device 'lan0'
${TIER}`,
  );
  t.before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lan0', 'up']);
  });
  t.after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });
  // Each test's daemon finds the kernel as the last one left it: a fresh qdisc and table (the shaper's start replaces
  // them).
  t.before.each(() => {
    spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'lan0', 'root']);
    spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'sluice_rate']);
  });

  t(
    'CoA-Request with WISPr-Bandwidth-Max-Down, then Mikrotik-Rate-Limit + Session-Timeout: in the kernel when ' +
      'the ACK arrives, no deauth',
    async (c: RadiusLab) => {
      const target = `127.0.0.1:${c.coaPort}`;
      const id = await grantTier(c, mac(21));
      assert.equal([classRates(), uploadLimit(mac(21))], [['2Mbit'], 125_000], "the plan's tier at the gate's opening");

      let r = await radclient(
        target,
        'coa',
        c.radius.secret,
        `Acct-Session-Id="${id}", WISPr-Bandwidth-Max-Down=8000000`,
        { timeoutS: 5 },
      );
      assert.match(r.output, /Received CoA-ACK/, r.output);
      assert.equal([classRates(), uploadLimit(mac(21))], [['8Mbit'], 125_000], 'download changed, upload kept');

      // MikroTik's rx/tx is the router's side: rx 512k is the client's upload, tx 4M its download.
      r = await radclient(
        target,
        'coa',
        c.radius.secret,
        `Acct-Session-Id="${id}", Mikrotik-Rate-Limit="512k/4M", Session-Timeout=1200`,
        { timeoutS: 5 },
      );
      assert.match(r.output, /Received CoA-ACK/, r.output);
      assert.equal([classRates(), uploadLimit(mac(21))], [['4Mbit'], 64_000]);
      const s = await c.lab.session(mac(21));
      assert.equal([s.allotment, s.state], ['1200', 'ACTIVE']);
      assert.is(c.lab.clientState(mac(21)), 'Authenticated', 'never deauthenticated');
    },
  );

  t(
    'a CoA lifts a tier: WISPr-Bandwidth-Max-Down=0 removes the download class, then Mikrotik-Rate-Limit="0" ' +
      'the upload limit; the session unlimited, no deauth',
    async (c: RadiusLab) => {
      const target = `127.0.0.1:${c.coaPort}`;
      const id = await grantTier(c, mac(24));
      assert.equal([classRates(), uploadLimit(mac(24))], [['2Mbit'], 125_000], "the plan's tier at the gate's opening");

      // CoovaChilli's 0: that direction not shaped. The upload keeps its limit.
      let r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="${id}", WISPr-Bandwidth-Max-Down=0`, {
        timeoutS: 5,
      });
      assert.match(r.output, /Received CoA-ACK/, r.output);
      assert.equal([classRates(), uploadLimit(mac(24))], [[], 125_000], 'download unlimited, upload kept');
      let s = await c.lab.session(mac(24));
      assert.equal([s.rate_down, s.rate_up], [null, 1_000_000]);

      // MikroTik's 0 ("no limit"; tx left out is rx): both directions lifted.
      r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="${id}", Mikrotik-Rate-Limit="0"`, {
        timeoutS: 5,
      });
      assert.match(r.output, /Received CoA-ACK/, r.output);
      assert.equal([classRates(), uploadLimit(mac(24))], [[], null], 'no class, no limit: the client is not shaped');
      s = await c.lab.session(mac(24));
      assert.equal([s.rate_down, s.rate_up, s.state], [null, null, 'ACTIVE']);
      assert.is(c.lab.clientState(mac(24)), 'Authenticated', 'never deauthenticated');

      // Lifted is journaled like a rate: after a restart the gate opens without a tier.
      await c.lab.stopDaemon('SIGKILL');
      spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'lan0', 'root']);
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'sluice_rate']);
      await c.lab.startDaemon();
      s = await c.lab.session(mac(24));
      assert.equal([s.rate_down, s.rate_up, s.state], [null, null, 'ACTIVE'], 'after kill -9 and a restart');
    },
  );

  t(
    'refusals change neither the kernel nor the session: a bad rate beside a good Session-Timeout 404, unknown ' +
      'session 503, CoovaChilli bandwidth 401',
    async (c: RadiusLab) => {
      const target = `127.0.0.1:${c.coaPort}`;
      const id = await grantTier(c, mac(22));
      const nak = async (attrs: string, cause: string) => {
        const r = await radclient(target, 'coa', c.radius.secret, attrs, { timeoutS: 5 });
        assert.match(r.output, new RegExp(`Received CoA-NAK[\\s\\S]*Error-Cause = ${cause}`), `${attrs}: ${r.output}`);
      };
      await nak(`Acct-Session-Id="${id}", Session-Timeout=1200, WISPr-Bandwidth-Max-Down=100`, 'Invalid-Request');
      await nak(`Acct-Session-Id="${id}", Session-Timeout=1200, Mikrotik-Rate-Limit="fast/4M"`, 'Invalid-Request');
      await nak(`Acct-Session-Id="no-such-session", WISPr-Bandwidth-Max-Down=8000000`, 'Session-Context-Not-Found');
      await nak(`Acct-Session-Id="${id}", ChilliSpot-Bandwidth-Max-Down=8000`, 'Unsupported-Attribute');
      assert.equal([classRates(), uploadLimit(mac(22))], [['2Mbit'], 125_000]);
      const s = await c.lab.session(mac(22));
      assert.equal([s.allotment, s.state], ['600', 'ACTIVE'], 'nothing half-applied');
    },
  );

  t.run();

  // tc and nft that cannot run (a router without kmod-sched-htb, or nft): the shaper turned itself off at the first
  // tier.
  const off = radiusDaemonSuite(
    'radius daemon CoA rates (no shaping possible)',
    `
config sluice 'main'
\toption tc '/bin/false'
\toption nft '/bin/false'
${TIER}`,
  );
  off(
    'a CoA with rates NAKs 506 Resources-Unavailable and changes nothing; one with totals alone still ACKs',
    async (c: RadiusLab) => {
      const target = `127.0.0.1:${c.coaPort}`;
      const id = await grantTier(c, mac(23));
      let r = await radclient(
        target,
        'coa',
        c.radius.secret,
        `Acct-Session-Id="${id}", Session-Timeout=1200, WISPr-Bandwidth-Max-Down=8000000`,
        { timeoutS: 5 },
      );
      assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Resources-Unavailable/, r.output);
      assert.is((await c.lab.session(mac(23))).allotment, '600');
      r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="${id}", Session-Timeout=1200`, {
        timeoutS: 5,
      });
      assert.match(r.output, /Received CoA-ACK/, r.output);
      assert.is((await c.lab.session(mac(23))).allotment, '1200');
    },
  );
  off.run();
}

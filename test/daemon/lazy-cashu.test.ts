// tier: daemon
/**
 * cashu-ts and noble's secp256k1 are a lazily loaded file of their own, dist/cashu.mjs
 * (src/cashu/lib.ts, src/cashu/loader.ts, scripts/build.mjs), as viem is evm.mjs (lazy-viem.test.ts): loaded when the
 * tollgate section opens its door (the router's Nostr key) or its cashu method, so a router without the section never
 * reads it; nor sluice's own Cashu code (src/cashu/ but a mint URL's spelling, which the config reads; the method's
 * files in src/payments/cashu/ but the plugin's entry and its LAN routes), in chunks of their own. Checked: sluice.mjs
 * holds none of their code and cashu.mjs no sluice code; with cashu.mjs and those chunks missing, a daemon without the
 * section starts, serves and never tries them (no ERR_MODULE_LOAD), and a daemon with the section leaves the door and
 * the method out with ERR_MODULE_LOAD, and the rest runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/net.ts';
import { startCashuMint } from '../peers/cashu-mint.ts';
import { BUNDLE, DaemonLab, ensureBuilt } from './harness.ts';

const DIST = join(BUNDLE, '..');
const CASHU = /node_modules\/(@cashu|@noble|@scure)\//;
/** sluice's Cashu code that only the tollgate section runs. */
const CASHU_CODE = /^src\/(cashu\/(?!mint-url\.ts)|payments\/cashu\/(?!index\.ts|lan-routes\.ts))/;

/** The chunk files (sluice-*.mjs) that hold that code, by the build's meta.json. */
function cashuChunks(meta: Record<string, string[]>): string[] {
  return Object.entries(meta)
    .filter(([out, inputs]) => /^dist\/sluice-.*\.mjs$/.test(out) && inputs.some((i) => CASHU_CODE.test(i)))
    .map(([out]) => out.slice('dist/'.length));
}

test("sluice.mjs holds none of cashu-ts's or noble's code; cashu.mjs does, and no sluice code", () => {
  ensureBuilt();
  const meta = JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Record<string, string[]>;
  assert.equal(
    meta['dist/sluice.mjs']!.filter((i) => CASHU.test(i)),
    [],
    'cashu-ts or noble in sluice.mjs',
  );
  assert.ok(
    meta['dist/cashu.mjs']?.some((i) => /node_modules\/@cashu\/cashu-ts\//.test(i)),
    'cashu-ts in cashu.mjs',
  );
  assert.ok(
    meta['dist/cashu.mjs']!.some((i) => /node_modules\/@noble\/curves\/secp256k1/.test(i)),
    'secp256k1 in cashu.mjs',
  );
  assert.ok(
    meta['dist/cashu.mjs']!.every((i) => !i.startsWith('src/') || i === 'src/cashu/lib.ts'),
    'no sluice code in cashu.mjs (no class twice)',
  );
});

async function withoutCashuCode(extraConfig: string, check: (lab: DaemonLab) => Promise<void>): Promise<void> {
  ensureBuilt();
  const copy = mkdtempSync(join(tmpdir(), 'sluice-nocashu-'));
  cpSync(DIST, copy, { recursive: true });
  rmSync(join(copy, 'cashu.mjs'));
  const chunks = cashuChunks(JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Record<string, string[]>);
  assert.ok(chunks.length > 0, "no chunk holds sluice's Cashu code");
  for (const chunk of chunks) rmSync(join(copy, chunk));
  const lab = await DaemonLab.create({
    bundle: join(copy, 'sluice.mjs'),
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig,
  });
  try {
    lab.portal.addClient('02:00:00:00:39:c1', '10.0.39.1');
    await lab.startDaemon();
    await check(lab);
    // The rest serves: a grant opens a gate.
    assert.is((await lab.callStatus('grant', { mac: '02:00:00:00:39:c1', seconds: 600 })).status, 0);
    await lab.waitFor(() => lab.clientState('02:00:00:00:39:c1') === 'Authenticated', 30_000, 'gate open');
    assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
  } finally {
    await lab.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

test(
  'cashu.mjs and the Cashu chunks missing, no tollgate section: the daemon starts and serves, never trying ' + 'them',
  async () => {
    await withoutCashuCode('', async (lab) => {
      assert.not.match(lab.output, /ERR_MODULE_LOAD/);
      assert.not.match(lab.output, /cashu/i);
    });
  },
);

test(
  'cashu.mjs missing, tollgate section on: the door and the cashu method are left out with ERR_MODULE_LOAD, the ' +
    'rest runs',
  async () => {
    const mint = await startCashuMint();
    try {
      await withoutCashuCode(
        `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${await freePort()}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '21'
\toption min_steps '1'
`,
        async (lab) => {
          // The door is the method's: a method that cannot open brings none.
          assert.not.match(lab.output, /TollGate door listening/);
          assert.match(lab.output, /payment method cashu unavailable/);
          assert.match(lab.output, /ERR_MODULE_LOAD/);
        },
      );
    } finally {
      await mint.stop();
    }
  },
);

test.run();

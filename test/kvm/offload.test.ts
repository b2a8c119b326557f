// tier: lab
/**
 * Offloaded flows against sluice's own tables, in the kvm lab's guest (../shared/labs/kvm: Debian's 6.1 kernel, which
 * has flowtables, where this machine's kernel has none). Opt-in: SLUICE_KVM_RUN names the lab's run.sh (set up once
 * with its setup.sh); without it, a counted skip (CI does not boot a VM). Writes sluice's counter table and a quota
 * table from src/ (the same scripts the daemon runs), boots the guest once and runs test/kvm/offload.sh there, which
 * moves TCP and UDP each way through openNDS 10.3.1's split flowtables and firewall4's single one and prints what the
 * client moved beside what sluice counted; then asserts on each line. Takes minutes (TCG emulation).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { counterTableScript } from '../../src/portal/kernel-counters.ts';
import { tableScript } from '../../src/portal/kernel-quota-nft.ts';
import { skipTest } from '../helpers/skip.ts';

const RUN = process.env['SLUICE_KVM_RUN'] ?? '';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const MAC = '02:00:00:00:0c:01';
const QUOTA = 5_242_880;

interface Line {
  layout: string;
  kase: string;
  moved: number;
  counted: number;
  offloaded: number;
}

/** offload.sh's result lines: `<layout> <case> moved=N counted=N [quota=N] [offloaded=N]`. */
function parse(text: string): Line[] {
  const out: Line[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\S+) moved=(-?\d+) counted=(-?\d+)(?: quota=\d+)?(?: offloaded=(\d+))?$/.exec(line.trim());
    if (m)
      out.push({
        layout: m[1]!,
        kase: m[2]!,
        moved: Number(m[3]),
        counted: Number(m[4]),
        offloaded: Number(m[5] ?? 0),
      });
  }
  return out;
}

if (RUN === '' || !existsSync(RUN) || process.getuid?.() !== 0) {
  skipTest(test, 'offloaded flows in the kvm guest', 'opt-in: SLUICE_KVM_RUN=<labs/kvm/run.sh>, as root', {
    ciInstalls: false,
  });
} else {
  test('offloaded flows: counted to what the client moved, braked at the quota, ended with the session', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kvm-'));
    // The guest sees the host's files but has its own /tmp, /run and /var/tmp: the tables go where it reads them.
    spawnSync('mkdir', ['-p', join(homedir(), '.cache'), join(dir, 'out')]);
    const tables = mkdtempSync(join(homedir(), '.cache', 'sluice-kvm-tables-'));
    try {
      writeFileSync(join(tables, 'counters.nft'), counterTableScript(['br-lan'], [MAC]));
      writeFileSync(join(tables, `quota-${QUOTA}.nft`), tableScript(['br-lan'], [{ mac: MAC, limitBytes: QUOTA }]));
      const r = spawnSync(
        RUN,
        [
          ...['-o', join(dir, 'out'), '-t', '1500', '-m', '1G'],
          ...['-e', `TABLES=${tables}`, '-e', `HELPER=${join(HERE, 'offload-peer.py')}`],
          ...['bash', join(HERE, 'offload.sh')],
        ],
        { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 << 20 },
      );
      const text = existsSync(join(dir, 'out', 'offload.txt'))
        ? readFileSync(join(dir, 'out', 'offload.txt'), 'utf8')
        : '';
      console.log(text);
      assert.is(r.status, 0, `the guest's run: ${r.stdout.slice(-2000)}`);
      assert.not.match(text, /ERROR/);
      const lines = parse(text);
      for (const layout of ['opennds', 'single']) {
        const of = (kase: string): Line => {
          const l = lines.find((x) => x.layout === layout && x.kase === kase);
          assert.ok(l, `${layout} ${kase} ran`);
          return l!;
        };
        // Counted to what the client moved at IP level; a UDP request or two (28 bytes each) the client's own count
        // of its payload does not see.
        for (const kase of ['tcp-down', 'tcp-up', 'udp-down', 'udp-up']) {
          const l = of(kase);
          assert.ok(l.moved > 1_000_000, `${layout} ${kase}: moved ${l.moved}`);
          assert.ok(Math.abs(l.counted - l.moved) <= 4096, `${layout} ${kase}: counted ${l.counted} of ${l.moved}`);
        }
        assert.ok(
          of('udp-down').offloaded + of('udp-up').offloaded > 0,
          `${layout}: the UDP flows were offloaded (else the case proves nothing)`,
        );
        // The quota holds the offloaded download at its limit (a segment short at most).
        const q = of('tcp-quota');
        assert.ok(q.moved <= QUOTA, `${layout}: ${q.moved} moved through a ${QUOTA}-byte quota`);
        // The gate closed: what still passes until sluice's flush is the portal's problem; after it, nothing.
        for (const proto of ['tcp', 'udp']) {
          const flushed = of(`${proto}-gate-closed-flushed`);
          assert.ok(flushed.moved <= 65_536, `${layout} ${proto}: ${flushed.moved} bytes after the flush`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(tables, { recursive: true, force: true });
    }
  });
}

test.run();

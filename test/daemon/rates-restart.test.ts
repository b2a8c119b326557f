// tier: daemon
/**
 * Speed tiers through a crash, against the real daemon binary: a plan's rates, a ubus `change` of them, and
 * rates given by a `change` to a session sold without any are journaled; after kill -9 and a restart every live
 * session's open gate is limited again (tc and nft are recording stand-ins: the shaper's commands are what is checked;
 * the kernel's side is measured in test/e2e/rates.test.ts). Without the journal the restart found the gates open, did
 * no auth, and so set no rates at all.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonLab } from './harness.ts';

const A = '02:00:00:00:2e:01';
const B = '02:00:00:00:2e:02';
const C = '02:00:00:00:2e:03';

/** A tc or nft that appends its argv and stdin to `log` and succeeds. */
function recorder(dir: string, tool: string, log: string): string {
  const path = join(dir, `${tool}.sh`);
  writeFileSync(
    path,
    `#!/bin/sh\n{ printf '%s' '${tool}'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; cat; printf ` +
      `'\\n'; } >> '${log}'\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

test(
  "kill -9 and restart: every live session's open gate " + 'gets its journaled rates again (plan, changed, added)',
  async () => {
    const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
    const log = join(lab.dir, 'kernel.log');
    const kernel = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    lab.options.extraConfig = `
config sluice 'main'
\toption shape_device 'lan0'
\toption tc '${recorder(lab.dir, 'tc', log)}'
\toption nft '${recorder(lab.dir, 'nft', log)}'

config pricing 'slow'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
\toption rate_down '2mbit'
\toption rate_up '1mbit'
`;
    lab.writeConfig();
    lab.portal.addClient(A, '10.0.0.31');
    lab.portal.addClient(B, '10.0.0.32');
    lab.portal.addClient(C, '10.0.0.33');
    try {
      await lab.startDaemon();
      await lab.call('grant', { mac: A, seconds: 3600, plan: 'slow' });
      await lab.call('grant', { mac: B, seconds: 3600, plan: 'slow' });
      await lab.call('grant', { mac: C, seconds: 3600 });
      await lab.waitFor(
        () => [A, B, C].every((m) => lab.clientState(m) === 'Authenticated'),
        30_000,
        'three gates open',
      );
      const changed = (await lab.call('change', { mac: B, rate_down: '8mbit' })).session as Record<string, unknown>;
      assert.equal([changed.rate_down, changed.rate_up], [8_000_000, 1_000_000], 'the upload kept');
      const added = (await lab.call('change', { mac: C, rate_up: '512kbit' })).session as Record<string, unknown>;
      assert.equal([added.rate_down, added.rate_up], [null, 512_000]);
      assert.match(
        kernel(),
        /u_020000002e03 \{ rate over 64000 bytes\/second/,
        'the change reached the shaper before the crash',
      );

      await lab.stopDaemon('SIGKILL');
      writeFileSync(log, '');
      await lab.startDaemon();
      await lab.waitFor(() => kernel().includes('table inet sluice_rate {'), 30_000, 'the shaper rebuilt at start-up');
      const after = kernel();
      assert.match(
        after,
        /^tc qdisc replace dev lan0 root handle 51: /m,
        "the qdisc replaced (the old run's classes go with it)",
      );
      const classOf = (ip: string): string =>
        new RegExp(`add element inet sluice_rate down \\{ ${ip.replace(/\./g, '\\.')} : (51:[0-9a-f]+) \\}`).exec(
          after,
        )?.[1] ?? 'none';
      const rateOf = (cls: string): string =>
        new RegExp(`^tc class replace dev lan0 parent 51: classid ${cls} htb rate (\\d+)bit`, 'm').exec(after)?.[1] ??
        'none';
      assert.is(rateOf(classOf('10.0.0.31')), '2000000', "A: its plan's download rate");
      assert.is(rateOf(classOf('10.0.0.32')), '8000000', "B: the changed download rate, not its plan's");
      assert.is(classOf('10.0.0.33'), 'none', 'C: no download rate');
      assert.match(
        after,
        /add limit inet sluice_rate u_020000002e01 \{ rate over 125000 bytes\/second/,
        'A: 1 Mbit/s up',
      );
      assert.match(
        after,
        /add limit inet sluice_rate u_020000002e02 \{ rate over 125000 bytes\/second/,
        'B: 1 Mbit/s up kept',
      );
      assert.match(
        after,
        /add limit inet sluice_rate u_020000002e03 \{ rate over 64000 bytes\/second/,
        'C: the 512 kbit/s a change added',
      );
      for (const m of [A, B, C]) assert.is(lab.clientState(m), 'Authenticated', `${m} kept its gate (no re-auth)`);
      const rates = async (mac: string) => {
        const s = await lab.session(mac);
        return [s.rate_down, s.rate_up];
      };
      assert.equal(await rates(A), [2_000_000, 1_000_000]);
      assert.equal(await rates(B), [8_000_000, 1_000_000]);
      assert.equal(await rates(C), [null, 512_000]);
    } finally {
      await lab.close();
    }
  },
);

test.run();

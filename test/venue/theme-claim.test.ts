// tier: fast
/**
 * The openNDS ThemeSpec's part in roaming (docs/roaming.md): openNDS runs it for a device's first request at this
 * router (its captive probe), the first sign a device with a session at another router of the venue arrived. In a
 * venue it asks sluice to claim that session, in the background, passing on a plain MAC only (the value comes from
 * openNDS's query string).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const THEME = new URL('../../files/usr/lib/opennds/theme_sluice.sh', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sluice-theme-'));

/** The theme as libopennds.sh runs it, with uci and ubus stubbed: what it asked ubus ('' for nothing). */
function claimed(clientmac: string, venue: string): string {
  const out = join(dir, 'ubus.out');
  rmSync(out, { force: true });
  const stub =
    `uci() { [ "$*" = "-q get sluice.http.listen" ] && echo 192.168.1.1:2122; ` +
    `[ "$*" = "-q get sluice.main.venue" ] && [ -n '${venue}' ] && echo '${venue}'; }\n` +
    `ubus() { echo "$*" > '${out}.tmp' && mv '${out}.tmp' '${out}'; }`;
  const r = spawnSync(
    'sh',
    ['-c', `${stub}\nclientmac='${clientmac}'\n. '${THEME}'\nheader\ngenerate_splash_sequence`],
    {
      encoding: 'utf8',
    },
  );
  assert.is(r.status, 0);
  assert.ok(r.stdout.includes('url=http://192.168.1.1:2122/portal'), 'the splash is served as before');
  // The claim runs in the background (the splash never waits for it): give it a generous while when one is expected.
  const expected = venue !== '' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(clientmac);
  const deadline = Date.now() + (expected ? 30_000 : 1000);
  while (!existsSync(out) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  return existsSync(out) ? readFileSync(out, 'utf8').trim() : '';
}

test('in a venue, a device first met here is claimed; elsewhere, or with no plain MAC, nothing is asked', () => {
  assert.is(claimed('02:00:00:00:5e:01', 'hall'), '-t 5 call sluice venue_claim {"mac":"02:00:00:00:5e:01"}');
  assert.is(claimed('02:00:00:00:5e:01', ''), '', 'no venue: no claim');
  assert.is(claimed('02:00:00:00:5e:01"}', 'hall'), '', 'not a plain MAC: nothing passed on');
  assert.is(claimed('', 'hall'), '');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();

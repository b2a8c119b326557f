// tier: fast
/**
 * files/usr/lib/opennds/binauth_sluice.sh, the BinAuth docs/quickstart.md gives openNDS 10 in place of its
 * binauth_log.sh (≈ 0.3 s of openNDS's CPU on every auth and deauth): run by sh with the arguments openNDS passes
 * (src/auth.c binauth_action, src/http_microhttpd.c do_binauth). Only sluice opens a gate: openNDS's own login
 * (`auth_client`) is refused; sluice's auths and deauths, and openNDS's own ends, are answered done with nothing said.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';

const SCRIPT = new URL('../../files/usr/lib/opennds/binauth_sluice.sh', import.meta.url).pathname;
const MAC = '02:00:00:00:0c:01';

function binauth(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('sh', [SCRIPT, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('executable, as openNDS runs it', () => {
  assert.ok((statSync(SCRIPT).mode & 0o111) !== 0);
});

test("openNDS's own login page does not open the gate: auth_client is refused", () => {
  const r = binauth('auth_client', MAC, 'http%3a%2f%2fexample', 'Mozilla', '10.77.0.101', 'a1b2c3d4', 'bmE=');
  assert.is(r.code, 1);
  assert.is(r.out, '', 'no session length or quotas handed back');
});

test("sluice's auths and deauths and openNDS's own ends are answered done, silently", () => {
  for (const action of ['ndsctl_auth', 'ndsctl_deauth', 'idle_deauth', 'timeout_deauth', 'shutdown_deauth']) {
    const r = binauth(action, MAC, '0', '0', '1764150000', '1764150600', 'a1b2c3d4', 'bmE=');
    assert.equal(r, { code: 0, out: '' }, action);
  }
});

test.run();

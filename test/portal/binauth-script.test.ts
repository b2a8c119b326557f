// tier: fast
/**
 * files/usr/lib/opennds/binauth_sluice.sh, the BinAuth docs/quickstart.md gives openNDS 10 in place of its
 * binauth_log.sh (≈ 0.3 s of openNDS's CPU on every auth and deauth): run by sh with the arguments openNDS passes
 * (src/auth.c binauth_action, src/http_microhttpd.c do_binauth). Only sluice opens a gate: openNDS's own login
 * (`auth_client`) is refused; sluice's auths and deauths, and openNDS's own ends, are answered done with nothing said.
 * It keeps each client's token at its auth beside openNDS's control socket, where sluice reads it for a deauth by
 * token (src/portal/binauth-tokens.ts), and empties it at the deauth.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binauthTokenReader } from '../../src/portal/binauth-tokens.ts';

const SCRIPT = new URL('../../files/usr/lib/opennds/binauth_sluice.sh', import.meta.url).pathname;
const MAC = '02:00:00:00:0c:01';
const TOKEN = 'a1b2c3d4';
const dirs: string[] = [];
const servers: Server[] = [];

/** A directory of its own (no control socket in it unless `socket`), where the script looks for openNDS's. */
async function portalDir(socket: boolean): Promise<{ dir: string; sock: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-binauth-'));
  dirs.push(dir);
  const sock = join(dir, 'ndsctl.sock');
  if (socket) {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(sock, resolve));
  }
  return { dir, sock };
}

function binauth(dirs: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('sh', [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SLUICE_BINAUTH_DIRS: dirs },
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** The arguments openNDS gives an auth or a deauth (src/auth.c binauth_action). */
const session = (action: string, token = TOKEN): string[] => [
  action,
  MAC,
  '0',
  '0',
  '1764150000',
  '1764150600',
  token,
  'bmE=',
];

test.after(() => {
  for (const s of servers) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('executable, as openNDS runs it', () => {
  assert.ok((statSync(SCRIPT).mode & 0o111) !== 0);
});

test("openNDS's own login page does not open the gate: auth_client is refused", async () => {
  const { dir } = await portalDir(true);
  const r = binauth(dir, 'auth_client', MAC, 'http%3a%2f%2fexample', 'Mozilla', '10.77.0.101', TOKEN, 'bmE=');
  assert.is(r.code, 1);
  assert.is(r.out, '', 'no session length or quotas handed back');
  assert.not.ok(existsSync(join(dir, 'sluice-tokens', MAC)), 'no token kept for a refused login');
});

test("sluice's auths and deauths and openNDS's own ends are answered done, silently", async () => {
  const { dir } = await portalDir(true);
  for (const action of ['ndsctl_auth', 'ndsctl_deauth', 'idle_deauth', 'timeout_deauth', 'shutdown_deauth']) {
    assert.equal(binauth(dir, ...session(action)), { code: 0, out: '' }, action);
  }
});

test("an auth keeps the client's token beside the control socket for sluice; a deauth empties it", async () => {
  const { dir, sock } = await portalDir(true);
  const read = binauthTokenReader(() => sock);
  assert.is(await read(MAC), undefined);
  assert.equal(binauth(dir, ...session('ndsctl_auth')), { code: 0, out: '' });
  assert.is(readFileSync(join(dir, 'sluice-tokens', MAC), 'utf8'), `${MAC} ${TOKEN}\n`);
  assert.is(await read(MAC), TOKEN);
  assert.is(await read('02:00:00:00:0c:02'), undefined, "another client's file is not this one's");
  // openNDS's own end of the session (its idle timeout) as well as sluice's deauth: the token is spent.
  assert.equal(binauth(dir, ...session('idle_deauth')), { code: 0, out: '' });
  assert.is(await read(MAC), undefined);
  assert.equal(binauth(dir, ...session('ndsctl_auth', '0badf00d')), { code: 0, out: '' });
  assert.is(await read(MAC), '0badf00d', 'the next auth keeps its new token');
  assert.equal(binauth(dir, ...session('ndsctl_deauth', '0badf00d')), { code: 0, out: '' });
  assert.is(await read(MAC), undefined);
});

test('openNDS stopping (shutdown_deauth) leaves the records: its restart is seen by sluice itself', async () => {
  const { dir, sock } = await portalDir(true);
  const read = binauthTokenReader(() => sock);
  assert.equal(binauth(dir, ...session('ndsctl_auth')), { code: 0, out: '' });
  assert.equal(binauth(dir, ...session('shutdown_deauth')), { code: 0, out: '' });
  assert.is(await read(MAC), TOKEN, 'not emptied: no deauth reported to the watch');
});

test("a directory without a control socket gets nothing; the first with openNDS's socket is used", async () => {
  const none = await portalDir(false);
  const portal = await portalDir(true);
  assert.equal(binauth(`${none.dir} ${portal.dir}`, ...session('ndsctl_auth')), { code: 0, out: '' });
  assert.not.ok(existsSync(join(none.dir, 'sluice-tokens')));
  assert.is(await binauthTokenReader(() => portal.sock)(MAC), TOKEN);
});

test('a MAC argument that is not one is written nowhere (it names the file)', async () => {
  const { dir } = await portalDir(true);
  for (const mac of ['../../etc/x', '', 'a b']) {
    const args = session('ndsctl_auth');
    args[1] = mac;
    assert.equal(binauth(dir, ...args), { code: 0, out: '' }, mac);
  }
  assert.not.ok(existsSync(join(dir, 'sluice-tokens')));
});

test.run();

// tier: fast
// The reload diff (src/config/reload-diff.ts): which changes take a restart, and what stats shows meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withOverrides, type Config } from '../../src/config/index.ts';
import {
  asRunning,
  listenMoved,
  reloadDiff,
  restartRequired,
  runningConfig,
  type RunningParts,
} from '../../src/config/reload-diff.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';

const PLAN = `config pricing 'p'\n\toption price_per_step '5'\n`;
const load = (extra = ''): Config =>
  configFromUci(parseUci(`config sluice 'main'\n${extra}${PLAN}`), { hostname: 'router1' });
const partsOf = (c: Config): RunningParts => ({
  main: c.main,
  http: c.http,
  radius: c.radius.enabled,
  x402: c.x402.enabled,
  escrow: c.escrow.enabled,
  batchSettlement: c.batchSettlement.enabled,
});

test('an unchanged config needs no restart', () => {
  const c = load();
  assert.equal(reloadDiff(partsOf(c), load()), []);
});

test('restart-only options of main are named by their UCI names; the others apply on reload', () => {
  const running = load();
  const next = load(
    `\toption poll_interval '5'\n\toption state_dir '/tmp/s'\n\toption checkpoint_interval '60'\n\toption ` +
      `log_level 'debug'\n`,
  );
  assert.equal(restartRequired(running.main, next.main).sort(), ['main.poll_interval', 'main.state_dir']);
  assert.equal(reloadDiff(partsOf(running), next).sort(), ['main.poll_interval', 'main.state_dir']);
});

test('list options are compared by value (a new ndsctl argv), not by identity', () => {
  const running = load(`\tlist ndsctl '/usr/bin/ndsctl'\n`);
  assert.equal(restartRequired(running.main, load(`\tlist ndsctl '/usr/bin/ndsctl'\n`).main), []);
  assert.equal(restartRequired(running.main, load(`\tlist ndsctl '/opt/ndsctl'\n`).main), ['main.ndsctl']);
});

test(
  "the LAN endpoint's rate limit takes a restart; its listen moves on reload, and radius, x402, escrow, " +
    'batch_settlement and upto switch on reload (a reload opens and closes their sales)',
  () => {
    const c = load();
    const parts = partsOf(c);
    assert.equal(reloadDiff({ ...parts, radius: !parts.radius }, c), []);
    assert.equal(reloadDiff({ ...parts, x402: !parts.x402 }, c), []);
    assert.equal(reloadDiff({ ...parts, escrow: !parts.escrow }, c), []);
    assert.equal(reloadDiff({ ...parts, batchSettlement: !parts.batchSettlement }, c), []);
    assert.equal(reloadDiff({ ...parts, upto: true }, c), []);
    assert.equal(reloadDiff({ ...parts, http: { ...parts.http, port: parts.http.port + 1 } }, c), []);
    assert.ok(listenMoved({ ...parts.http, port: parts.http.port + 1 }, c.http));
    assert.ok(listenMoved({ ...parts.http, host: '10.9.9.9' }, c.http));
    assert.not.ok(listenMoved({ ...parts.http, rateLimit: parts.http.rateLimit + 1 }, c.http));
    // PC-sync's route and nonce file are set up with the endpoint: its options take a restart too.
    assert.equal(reloadDiff({ ...parts, http: { ...parts.http, pcsyncSecret: 'another-secret-0123456789' } }, c), [
      'http.pcsync_secret',
    ]);
    assert.equal(reloadDiff({ ...parts, http: { ...parts.http, pcsyncWindowMs: 60_000 } }, c), ['http.pcsync_window']);
    assert.equal(reloadDiff({ ...parts, http: { ...parts.http, host: '10.9.9.9' } }, c), []);
    assert.equal(reloadDiff({ ...parts, http: { ...parts.http, rateLimit: parts.http.rateLimit + 1 } }, c), [
      'http.rate_limit',
    ]);
  },
);

test('asRunning and runningConfig show the running values of what takes a restart, the new values of the rest', () => {
  const running = load();
  const next = load(`\toption poll_interval '5'\n\toption log_level 'debug'\n`);
  const shown = asRunning(next, running.main);
  assert.is(shown.main.pollIntervalMs, running.main.pollIntervalMs);
  assert.is(shown.main.logLevel, 'debug');
  const parts = { ...partsOf(running), http: { ...running.http, port: 1234 } };
  const stats = runningConfig(next, parts);
  assert.is(stats.http.port, 1234, 'the LAN endpoint as it was started');
  assert.is(stats.main.pollIntervalMs, running.main.pollIntervalMs);
});

test('--ubus-socket replaces main.ubus_socket, so a reload of the same file reports nothing', () => {
  const c = load();
  const started = withOverrides(c, { ubusSocket: '/tmp/ubus.sock' });
  assert.is(started.main.ubusSocket, '/tmp/ubus.sock');
  assert.is(withOverrides(c, {}), c);
  assert.equal(restartRequired(started.main, withOverrides(load(), { ubusSocket: '/tmp/ubus.sock' }).main), []);
  assert.equal(restartRequired(started.main, load().main), ['main.ubus_socket']);
});

test.run();

test("TollGate's door follows a reload: neither a new listen address nor a new price takes a restart", () => {
  const gate = (listen: string, price = '21') =>
    `config tollgate 'tollgate'\n\toption enabled '1'\n\toption listen '${listen}'\n\toption plan 'p'\n\tlist ` +
    `mint 'https://mint.example.com'\n\toption price_per_step '${price}'\n`;
  const c = configFromUci(parseUci(`config sluice 'main'\n${PLAN}${gate('192.168.1.1:2121')}`), {
    hostname: 'router1',
  });
  assert.ok(c.tollgate, 'the section parses');
  const parts = { ...partsOf(c), tollgate: true };
  const moved = configFromUci(parseUci(`config sluice 'main'\n${PLAN}${gate('192.168.1.1:2999')}`), {
    hostname: 'router1',
  });
  const repriced = configFromUci(parseUci(`config sluice 'main'\n${PLAN}${gate('192.168.1.1:2121', '42')}`), {
    hostname: 'router1',
  });
  assert.equal(reloadDiff(parts, moved), []);
  assert.equal(reloadDiff(parts, repriced), []);
});

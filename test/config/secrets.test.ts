// tier: fast
// Secrets in their own UCI file, /etc/config/sluice_secrets: the loader reads them with the main
// file, a value there wins, one left in the main file still works (and is reported), anything else there is ignored
// with a problem; the shipped files keep every secret out of /etc/config/sluice.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSluiceError } from '../../src/errors.ts';
import { loadConfigPartial } from '../../src/config/index.ts';
import { parseUci } from '../../src/config/uci.ts';
import { SECRET_OPTIONS, secretsPathFor } from '../../src/config/secrets.ts';

const PLAN = `config pricing 'p'\n\toption price_per_step 1\n`;
const RADIUS_ON = `config radius 'radius'\n\toption enabled 1\n\toption server 10.0.0.1\n`;
const dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
const path = join(dir, 'sluice');
test.after(() => rmSync(dir, { recursive: true, force: true }));

function files(main: string, secrets?: string): void {
  writeFileSync(path, main);
  rmSync(secretsPathFor(path), { force: true });
  if (secrets !== undefined) writeFileSync(secretsPathFor(path), secrets);
}

test("the secrets file is the main file's path + _secrets (/etc/config/sluice_secrets)", () => {
  assert.is(secretsPathFor('/etc/config/sluice'), '/etc/config/sluice_secrets');
});

test('a secret only in sluice_secrets: read as radius.secret, the section runs, nothing reported', async () => {
  files(PLAN + RADIUS_ON, `config radius 'radius'\n\toption secret 's3cr3t'\n\toption das_secret 'd4s'\n`);
  const { config, problems, exposedSecrets } = await loadConfigPartial(path, { hostname: 'h' });
  assert.equal([config.radius.enabled, config.radius.secret, config.radius.dasSecret], [true, 's3cr3t', 'd4s']);
  assert.equal([problems, exposedSecrets], [[], []]);
});

test('every secret of the table is read from sluice_secrets, even for a section the main file lacks', async () => {
  files(
    PLAN,
    `config radius 'radius'\n\toption secret r\n\toption das_secret d\nconfig mqtt 'mqtt'\n\toption password ` +
      `p\n\toption command_secret c\n` +
      `config hook 'hook'\n\toption secret h\nconfig http 'http'\n\toption pcsync_secret ${'s'.repeat(16)}\n`,
  );
  const { config, problems } = await loadConfigPartial(path, { hostname: 'h' });
  assert.equal(problems, []);
  assert.equal(
    [
      config.radius.secret,
      config.radius.dasSecret,
      config.mqtt.password,
      config.mqtt.commandSecret,
      config.hook.secret,
      config.http.pcsyncSecret,
    ],
    ['r', 'd', 'p', 'c', 'h', 's'.repeat(16)],
  );
  assert.equal(Object.values(SECRET_OPTIONS).flat().length, 6, 'this test covers every secret');
});

test(
  'a secret left in /etc/config/sluice (not migrated): still used, reported as exposed; the secrets file wins ' +
    'over it',
  async () => {
    files(`${PLAN}${RADIUS_ON}\toption secret old\n`);
    let r = await loadConfigPartial(path, { hostname: 'h' });
    assert.equal(
      [r.config.radius.enabled, r.config.radius.secret, r.exposedSecrets, r.problems],
      [true, 'old', ['radius.secret'], []],
    );
    files(`${PLAN}${RADIUS_ON}\toption secret old\n`, `config radius 'radius'\n\toption secret new\n`);
    r = await loadConfigPartial(path, { hostname: 'h' });
    assert.equal([r.config.radius.secret, r.exposedSecrets], ['new', []]);
  },
);

test(
  'an empty secret in sluice_secrets does not hide one ' + 'in the main file (an upgrade half-way loses nothing)',
  async () => {
    files(`${PLAN}${RADIUS_ON}\toption secret old\n`, `config radius 'radius'\n\toption secret ''\n`);
    const r = await loadConfigPartial(path, { hostname: 'h' });
    assert.equal([r.config.radius.secret, r.exposedSecrets], ['old', ['radius.secret']]);
  },
);

test('anything else in sluice_secrets is not read: a problem with effect ignored, the value never echoed', async () => {
  files(
    PLAN + RADIUS_ON,
    `config radius 'radius'\n\toption secret s\n\toption server 192.0.2.66\nconfig sluice 'main'\n\toption enabled 0\n`,
  );
  const { config, problems } = await loadConfigPartial(path, { hostname: 'h' });
  assert.equal(config.radius.servers, ['10.0.0.1']);
  assert.is(config.main.enabled, true);
  assert.equal(
    problems.map((p) => [p.path, p.effect, p.value]),
    [
      ['sluice_secrets.radius.server', 'ignored', undefined],
      ['sluice_secrets.main.enabled', 'ignored', undefined],
    ],
  );
  assert.match(problems[0]!.reason, /set it in \/etc\/config\/sluice/);
});

test('no secrets file: the main file alone, as before; a secrets file that is not UCI: ERR_UCI_PARSE', async () => {
  files(PLAN);
  assert.equal((await loadConfigPartial(path, { hostname: 'h' })).problems, []);
  files(PLAN, `config radius 'radius'\n\toption secret 'unterminated\n`);
  try {
    await loadConfigPartial(path, { hostname: 'h' });
    assert.unreachable('should throw');
  } catch (err) {
    assert.ok(isSluiceError(err) && err.code === 'ERR_UCI_PARSE', String(err));
  }
});

test(
  'the shipped /etc/config/sluice holds no secret; sluice_secrets holds exactly the secrets, each section of its ' +
    'type',
  () => {
    const root = new URL('../../files/etc/config/', import.meta.url).pathname;
    const main = parseUci(readFileSync(join(root, 'sluice'), 'utf8'));
    for (const [type, options] of Object.entries(SECRET_OPTIONS)) {
      for (const s of main.sections.filter((x) => x.type === type))
        for (const o of options) assert.not.ok(s.options.has(o), `sluice ${type}.${o}`);
    }
    // Shipped empty (uci drops an option set to '', so the text is what says which options the file is for).
    const text = readFileSync(join(root, 'sluice_secrets'), 'utf8');
    const listed: Record<string, string[]> = {};
    let section = '';
    for (const line of text.split('\n')) {
      const c = /^config (\w+) '(\w+)'$/.exec(line);
      if (c) {
        assert.is(c[1], c[2], 'each section named after its type');
        section = c[1]!;
        listed[section] = [];
      }
      const o = /^\toption (\w+) ''$/.exec(line);
      if (o) listed[section]!.push(o[1]!);
    }
    assert.equal(listed, Object.fromEntries(Object.entries(SECRET_OPTIONS).map(([t, o]) => [t, [...o]])));
    assert.equal(
      parseUci(text).sections.map((s) => s.name),
      Object.keys(SECRET_OPTIONS),
    );
  },
);

test.run();

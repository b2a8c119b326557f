// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';
import { loadConfigPartial, redactConfig, type Config } from '../../src/config/index.ts';
import { ConfigError, configFromUci, configFromUciPartial } from '../../src/config/load.ts';
import { loadConfig } from '../../src/config/load-file.ts';
import { parseUci } from '../../src/config/uci.ts';

const PLAN = `config pricing 'p'\n\toption price_per_step '5'\n`;
const load = (text: string, hostname = 'router1'): Config => configFromUci(parseUci(text), { hostname });

/** Every problem path of the ConfigError thrown for `text`. */
function problems(text: string): { path: string; reason: string; value?: string }[] {
  try {
    load(text);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).code, 'ERR_CONFIG_INVALID');
    return [...(err as ConfigError).problems];
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(text)}`);
}
const paths = (text: string) => problems(text).map((p) => p.path);

test('defaults: a file with one priced plan and nothing else', () => {
  const c = load(PLAN);
  assert.equal(c.main, {
    enabled: true,
    stateDir: '/etc/sluice',
    ndsctl: ['/usr/bin/ndsctl'],
    ndsctlSocket: 'auto',
    portal: 'auto',
    pollIntervalMs: 2000,
    checkpointIntervalMs: 300_000,
    ndsctlTimeoutMs: 5000,
    workers: 1,
    routerId: 'router1',
    ubusSocket: '/var/run/ubus/ubus.sock',
    logLevel: 'info',
    leaveForeignClients: false,
    portalOutputMax: 32 * 1024 * 1024,
    minReadIntervalMs: 20,
    kernelQuota: false,
    nft: ['nft'],
    shapeDevices: [],
    tc: ['tc'],
    walledGarden: { hosts: [], ports: [443, 80] },
    venue: '',
    venuePresentWindowMs: 1000,
    venueLeaseTtlMs: 90_000,
  });
  assert.equal(c.pricing, [
    {
      id: 'p',
      metric: 'seconds',
      stepSize: 60n,
      pricePerStep: 5n,
      asset: '',
      currency: 'USDC',
      decimals: 6,
      minSteps: 1n,
      maxSteps: 100n,
    },
  ]);
  assert.equal(c.radius, {
    enabled: false,
    servers: [],
    authPort: 1812,
    acctPort: 1813,
    secret: '',
    nasIdentifier: 'router1',
    nasIp: '',
    calledStationId: '',
    interimIntervalMs: 300_000,
    coaPort: 3799,
    coaListen: '',
    dasClients: [],
    dasSecret: '',
    timeoutMs: 3000,
    retries: 2,
    maxInFlight: 32,
    backoffMaxMs: 60_000,
    queueMaxBytes: 1 << 20,
  });
  assert.equal(c.mqtt, {
    enabled: false,
    url: '',
    username: '',
    password: '',
    clientId: 'sluice-router1',
    keepaliveMs: 60_000,
    protocol: 'auto',
    caFile: '',
    certFile: '',
    keyFile: '',
    topicPrefix: 'sluice',
    qos: 1,
    format: 'msgpack',
    maxPayload: 65536,
    maxInflight: 100,
    queueDir: '',
    queueMax: 1048576,
    usageExpiryMs: 3_600_000,
    statusIntervalMs: 60_000,
    commands: false,
    commandSecret: '',
    commandWindowMs: 300_000,
  });
  assert.equal(c.escrow, {
    enabled: false,
    facilitatorUrl: '',
    network: 'eip155:8453',
    chainId: 8453,
    address: '',
    seller: '',
    creditSteps: 1,
    closeGraceMs: 30_000,
  });
  const e = load(
    `${PLAN.replace('option price_per_step', `option asset 0x${'a'.repeat(40)}\n\toption price_per_step`)}config ` +
      `escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f:8402/\n` +
      `\toption network base-sepolia\n\toption address 0x${'B'.repeat(40)}\n\toption seller ` +
      `0x${'c'.repeat(40)}\n\toption credit_steps 0\n\toption close_grace 2.5\n`,
  ).escrow;
  assert.equal(e, {
    enabled: true,
    facilitatorUrl: 'http://f:8402/',
    network: 'eip155:84532',
    chainId: 84532,
    address: `0x${'b'.repeat(40)}`,
    seller: `0x${'c'.repeat(40)}`,
    creditSteps: 0,
    closeGraceMs: 2500,
  });
  assert.equal(c.hook, {
    enabled: false,
    url: '',
    secret: '',
    timeoutMs: 10_000,
    backoffMaxMs: 300_000,
    queueMax: 1048576,
  });
  assert.equal(c.limits, { maxDevicesPerUser: 0, maxSessions: 0 });
});

test('router_id falls back to the hostname, or "sluice" when the hostname is unusable', () => {
  assert.is(load(PLAN, 'cafe-7').main.routerId, 'cafe-7');
  assert.is(load(PLAN, 'bad host name').main.routerId, 'sluice');
  assert.is(load(`config sluice 'main'\n\toption router_id 'r.9'\n${PLAN}`, 'x').main.routerId, 'r.9');
});

test('main values: seconds to ms with fractions, booleans in every spelling, enums', () => {
  const c = load(
    `config sluice 'main'\n\toption poll_interval '0.25'\n\toption checkpoint_interval 5\n\toption ` +
      `ndsctl_timeout 1.5\n` +
      `\toption workers 16\n\toption portal nodogsplash\n\toption log_level debug\n\toption enabled off\n${PLAN}`,
  );
  assert.equal(
    [c.main.pollIntervalMs, c.main.checkpointIntervalMs, c.main.ndsctlTimeoutMs, c.main.workers],
    [250, 5000, 1500, 16],
  );
  assert.equal([c.main.portal, c.main.logLevel, c.main.enabled], ['nodogsplash', 'debug', false]);
  for (const [word, value] of [
    ['1', true],
    ['yes', true],
    ['on', true],
    ['true', true],
    ['enabled', true],
    ['0', false],
    ['no', false],
    ['off', false],
    ['false', false],
    ['disabled', false],
  ] as const) {
    assert.is(load(`config sluice 'main'\n\toption enabled '${word}'\n${PLAN}`).main.enabled, value, word);
  }
});

test('main is found as @sluice[0] when it is not named main', () => {
  assert.is(load(`config sluice\n\toption workers 3\n${PLAN}`).main.workers, 3);
});

test('ndsctl: shell-split option, or list as argv', () => {
  const opt = load(`config sluice 'main'\n\toption ndsctl "/usr/bin/ip netns exec 'lab ns' /usr/bin/ndsctl"\n${PLAN}`);
  assert.equal(opt.main.ndsctl, ['/usr/bin/ip', 'netns', 'exec', 'lab ns', '/usr/bin/ndsctl']);
  const esc = load(`config sluice 'main'\n\toption ndsctl '/bin/x "a b" c\\ d $HOME'\n${PLAN}`);
  assert.equal(esc.main.ndsctl, ['/bin/x', 'a b', 'c d', '$HOME']);
  const list = load(`config sluice 'main'\n\tlist ndsctl '/usr/bin/ip'\n\tlist ndsctl 'netns exec'\n${PLAN}`);
  assert.equal(list.main.ndsctl, ['/usr/bin/ip', 'netns exec']);
  assert.equal(paths(`config sluice 'main'\n\toption ndsctl "/bin/x 'open"\n${PLAN}`), ['main.ndsctl']);
  assert.equal(paths(`config sluice 'main'\n\toption ndsctl '   '\n${PLAN}`), ['main.ndsctl']);
});

test('pricing: step_size units, bigint prices, order of plans kept', () => {
  const c = load(
    `config pricing 'data'\n\toption metric bytes\n\toption step_size 100MiB\n\toption ` +
      `price_per_step ${2n ** 128n - 1n}\n` +
      `config pricing 't'\n\toption step_size 15m\n\toption price_per_step 0\n` +
      `config pricing 'k'\n\toption metric bytes\n\toption step_size 1.5KiB\n\toption price_per_step 1\n` +
      `config pricing 'g'\n\toption metric bytes\n\toption step_size '2 G'\n\toption price_per_step ` +
      `1\n\toption max_steps 10\n`,
  );
  assert.equal(
    c.pricing.map((p) => p.id),
    ['data', 't', 'k', 'g'],
  );
  assert.equal(
    c.pricing.map((p) => p.stepSize),
    [104_857_600n, 900n, 1536n, 2_000_000_000n],
  );
  assert.is(c.pricing[0]!.pricePerStep, 2n ** 128n - 1n);
  assert.is(c.pricing[1]!.pricePerStep, 0n);
});

test('pricing problems are named pricing[<id>].<option> with the reason and the text', () => {
  const found = problems(`config pricing 'data'\n\toption price_per_step '1.5'\n`);
  assert.equal(found, [
    {
      path: 'pricing[data].price_per_step',
      section: 'data',
      option: 'price_per_step',
      reason: 'must be a non-negative integer (smallest unit of the asset)',
      value: '1.5',
    },
  ] as unknown as typeof found);
  const err = (() => {
    try {
      load(`config pricing 'data'\n\toption price_per_step '1.5'\n`);
    } catch (e) {
      return e as ConfigError;
    }
  })()!;
  assert.is(
    err.message,
    'pricing[data].price_per_step: must be a non-negative integer (smallest unit of the asset), got "1.5"',
  );
  const bad = (options: string) => paths(`config pricing 'x'\n${options}`);
  assert.equal(bad(`\toption price_per_step -1\n`), ['pricing[x].price_per_step']);
  assert.equal(bad(`\toption price_per_step ${2n ** 128n}\n`), ['pricing[x].price_per_step']);
  assert.equal(bad(`\toption price_per_step 1e3\n`), ['pricing[x].price_per_step']);
  assert.equal(bad(`\toption metric bytes\n`), ['pricing[x].price_per_step'], 'price is required');
  assert.equal(bad(`\toption price_per_step 1\n\toption metric liters\n`), ['pricing[x].metric']);
  assert.equal(bad(`\toption price_per_step 1\n\toption step_size 0\n`), ['pricing[x].step_size']);
  assert.equal(
    bad(`\toption price_per_step 1\n\toption step_size 1MiB\n`),
    ['pricing[x].step_size'],
    'byte unit on a time plan',
  );
  assert.equal(bad(`\toption price_per_step 1\n\toption metric bytes\n\toption step_size 15m\n`), [
    'pricing[x].step_size',
  ]);
  assert.equal(bad(`\toption price_per_step 1\n\toption metric bytes\n\toption step_size 0.5B\n`), [
    'pricing[x].step_size',
  ]);
  assert.equal(bad(`\toption price_per_step 1\n\toption decimals 37\n`), ['pricing[x].decimals']);
  assert.equal(bad(`\toption price_per_step 1\n\toption min_steps 0\n`), ['pricing[x].min_steps']);
  assert.equal(bad(`\toption price_per_step 1\n\toption min_steps 5\n\toption max_steps 4\n`), [
    'pricing[x].max_steps',
  ]);
  assert.equal(
    bad(`\toption price_per_step 1\n\toption metric bytes\n\toption step_size 1TiB\n\toption max_steps 10000\n`),
    ['pricing[x].max_steps'],
  );
  assert.equal(bad(`\toption price_per_step 1\n\toption asset USDC\n`), ['pricing[x].asset']);
  assert.equal(bad(`\toption price_per_step 1\n\toption currency 'US Dollar'\n`), ['pricing[x].currency']);
  assert.equal(bad(`\toption price_per_step 1\n\tlist currency a\n`), ['pricing[x].currency']);
  assert.equal(
    bad(`\toption price_per_step 1\n\toption time_limit 1d\n`),
    ['pricing[x].time_limit'],
    'a time plan ends by its time',
  );
  assert.equal(bad(`\toption price_per_step 1\n\toption metric bytes\n\toption time_limit 1GiB\n`), [
    'pricing[x].time_limit',
  ]);
  assert.equal(bad(`\toption price_per_step 1\n\toption metric bytes\n\toption time_limit 0\n`), [
    'pricing[x].time_limit',
  ]);
  assert.equal(bad(`\toption price_per_step 1\n\toption metric bytes\n\toption time_limit 3654d\n`), [
    'pricing[x].time_limit',
  ]);
  assert.equal(
    bad(`\toption price_per_step 1\n\toption trial_every 1d\n`),
    ['pricing[x].trial_every'],
    'a trial is free',
  );
  assert.equal(bad(`\toption price_per_step 0\n\toption trial_every soon\n`), ['pricing[x].trial_every']);
  assert.is(
    load(`config pricing 'try'\n\toption price_per_step 0\n\toption step_size 15m\n\toption trial_every 1d\n`)
      .pricing[0]!.trialEvery,
    86_400n,
  );
  // trial_limit: a trial plan's cap per interval on the router, 500 unless set; 0 is no cap; only on a trial plan.
  assert.is(
    load(`config pricing 'try'\n\toption price_per_step 0\n\toption step_size 15m\n\toption trial_every 1d\n`)
      .pricing[0]!.trialLimit,
    500,
  );
  assert.is(
    load(
      `config pricing 'try'\n\toption price_per_step 0\n\toption step_size 15m\n\toption trial_every ` +
        `1d\n\toption trial_limit 0\n`,
    ).pricing[0]!.trialLimit,
    0,
  );
  assert.is(load(`config pricing 'p'\n\toption price_per_step 1\n`).pricing[0]!.trialLimit, undefined);
  assert.equal(
    bad(`\toption price_per_step 0\n\toption trial_limit 5\n`),
    ['pricing[x].trial_limit'],
    'not a trial plan',
  );
  assert.equal(bad(`\toption price_per_step 0\n\toption trial_every 1d\n\toption trial_limit 10001\n`), [
    'pricing[x].trial_limit',
  ]);
  assert.equal(bad(`\toption price_per_step 0\n\toption trial_every 1d\n\toption trial_limit many\n`), [
    'pricing[x].trial_limit',
  ]);
});

test("pricing: a data plan's time_limit (time and data in one plan, whichever comes first)", () => {
  const c = load(
    `config pricing 'day'\n\toption metric bytes\n\toption step_size 1GiB\n\toption price_per_step 1\n\toption ` +
      `time_limit 24h\n` +
      `config pricing 'gb'\n\toption metric bytes\n\toption price_per_step 1\n`,
  );
  assert.is(c.pricing[0]!.timeLimit, 86_400n);
  assert.is(c.pricing[1]!.timeLimit, undefined, 'absent: no deadline');
});

test('pricing: no plan, or an unnamed plan, is a problem', () => {
  assert.equal(paths(''), ['pricing']);
  assert.equal(paths(`config pricing\n\toption price_per_step 1\n`), ['pricing[@pricing[0]].name']);
});

test('main problems name main.<option>', () => {
  const cases: [string, string][] = [
    ['enabled maybe', 'main.enabled'],
    ['state_dir relative/dir', 'main.state_dir'],
    ['portal coova', 'main.portal'],
    ['poll_interval 0.1', 'main.poll_interval'],
    ['poll_interval 3601', 'main.poll_interval'],
    ['poll_interval 2s', 'main.poll_interval'],
    ['checkpoint_interval 4', 'main.checkpoint_interval'],
    ['ndsctl_timeout 0', 'main.ndsctl_timeout'],
    ['workers 0', 'main.workers'],
    ['workers 17', 'main.workers'],
    ['workers 1.5', 'main.workers'],
    ['portal_output_max 1000', 'main.portal_output_max'],
    ['portal_output_max 2GiB', 'main.portal_output_max'],
    ['min_read_interval 0.01', 'main.min_read_interval'],
    ["router_id 'a b'", 'main.router_id'],
    ['ubus_socket ubus.sock', 'main.ubus_socket'],
    ['log_level trace', 'main.log_level'],
  ];
  for (const [option, path] of cases)
    assert.equal(paths(`config sluice 'main'\n\toption ${option}\n${PLAN}`), [path], option);
});

test('every problem is reported at once', () => {
  const found = paths(
    `config sluice 'main'\n\toption workers 99\n\toption portal x\n` +
      `config pricing 'a'\n\toption price_per_step x\nconfig pricing 'b'\n\toption decimals 99\n\toption ` +
      `price_per_step 1\n` +
      `config radius 'radius'\n\toption enabled 1\nconfig limits 'limits'\n\toption max_devices_per_user -1\n`,
  );
  assert.equal(found.sort(), [
    'limits.max_devices_per_user',
    'main.portal',
    'main.workers',
    'pricing[a].price_per_step',
    'pricing[b].decimals',
    'radius.secret',
    'radius.server',
  ]);
});

test('upstreams: absent or disabled = defaults, no validation; enabled = required fields checked', () => {
  assert.is(
    load(`${PLAN}config radius 'radius'\n\toption enabled 0\n\toption auth_port banana\n`).radius.authPort,
    1812,
  );
  assert.equal(
    paths(
      `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server 'not_a host!'\n\toption secret ` +
        `s\n\toption auth_port 0\n\toption acct_port 65536\n\toption interim_interval 5\n`,
    ),
    ['radius.server', 'radius.auth_port', 'radius.acct_port', 'radius.interim_interval'],
  );
  const r = load(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server fd00::1\n\toption secret ` +
      `'s3cr3t'\n\toption coa_port 0\n`,
  ).radius;
  assert.equal([r.enabled, r.servers, r.secret, r.coaPort], [true, ['fd00::1'], 's3cr3t', 0]);
  const two = load(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server '10.0.0.1 radius2.example'\n\toption ` +
      `secret s\n`,
  ).radius;
  assert.equal(two.servers, ['10.0.0.1', 'radius2.example']);
  const listed = load(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\tlist server '10.0.0.1'\n\tlist server ` +
      `'[fd00::2]'\n\toption secret s\n\tlist das_client 10.0.0.9\n`,
  ).radius;
  assert.equal([listed.servers, listed.dasClients], [['10.0.0.1', 'fd00::2'], ['10.0.0.9']]);
  assert.equal(
    paths(
      `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server '10.0.0.1 bad_host!'\n\toption ` +
        `secret s\n\toption nas_ip nope\n\toption max_inflight 0\n`,
    ),
    ['radius.server', 'radius.nas_ip', 'radius.max_inflight'],
  );
  assert.equal(
    paths(
      `${PLAN}config mqtt 'mqtt'\n\toption enabled 1\n\toption url 'http://broker'\n\toption qos 3\n\toption ` +
        `topic_prefix 'a/#'\n`,
    ).sort(),
    ['mqtt.qos', 'mqtt.topic_prefix', 'mqtt.url'],
  );
  for (const u of ['mqtt://b:1883', 'mqtts://b', 'ws://b/mqtt', 'wss://b:443/mqtt']) {
    assert.is(load(`${PLAN}config mqtt 'mqtt'\n\toption enabled 1\n\toption url '${u}'\n`).mqtt.url, u);
  }
  assert.equal(
    paths(
      `${PLAN}config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url ftp://x\n\toption network ` +
        `solana\n\toption seller 0x1\n\toption credit_steps -1\n\toption close_grace 9999\n`,
    ),
    [
      'pricing[p].asset',
      'escrow.facilitator_url',
      'escrow.network',
      'escrow.address',
      'escrow.seller',
      'escrow.credit_steps',
      'escrow.close_grace',
    ],
  );
});

test('secrets are never echoed in problems', () => {
  const found = problems(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\tlist secret 'hunter2'\n`,
  );
  assert.equal(
    found.map((p) => p.path),
    ['radius.secret'],
  );
  assert.not.ok(JSON.stringify(found).includes('hunter2'));
});

test('unknown options and unknown section types are ignored', () => {
  const c = load(`config sluice 'main'\n\toption future_knob 7\nconfig gadget 'g'\n\toption x y\n${PLAN}`);
  assert.is(c.main.workers, 1);
});

test('redactConfig masks secrets, stringifies bigints, is JSON-safe', () => {
  const c = load(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\toption secret 'hunter2'\n` +
      `config mqtt 'mqtt'\n\toption password 'pw'\n`,
  );
  const view = redactConfig(c);
  const json = JSON.stringify(view);
  for (const secret of ['hunter2', 'pw']) assert.not.ok(json.includes(`"${secret}"`), secret);
  assert.equal([view.radius.secret, view.mqtt.password], ['***', '***']);
  assert.is(view.pricing[0]!.pricePerStep, '5');
  assert.is(view.pricing[0]!.stepSize, '60');
  assert.is(c.radius.secret, 'hunter2', 'the original is untouched');
  assert.is(redactConfig(load(PLAN)).radius.secret, '', 'an unset secret stays empty');
});

test('loadConfig: read errors, parse errors and config errors carry the file', async () => {
  const files: Record<string, string> = {
    '/c/ok': PLAN,
    '/c/syntax': `config t 's'\n\toption a 'x\n`,
    '/c/bad': `config pricing 'p'\n`,
  };
  const readFile = async (p: string) => {
    const t = files[p];
    if (t === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    return t;
  };
  assert.is((await loadConfig('/c/ok', { readFile, hostname: 'h' })).main.routerId, 'h');
  for (const [path, code] of [
    ['/c/missing', 'ERR_CONFIG_READ'],
    ['/c/syntax', 'ERR_UCI_PARSE'],
    ['/c/bad', 'ERR_CONFIG_INVALID'],
  ] as const) {
    try {
      await loadConfig(path, { readFile });
      assert.unreachable(path);
    } catch (err) {
      assert.ok(isSluiceError(err, code), `${path}: ${String(err)}`);
      assert.ok((err as Error).message.includes(`${path}:`), (err as Error).message);
    }
  }
});

const partial = (text: string) => configFromUciPartial(parseUci(text), { hostname: 'r' });
const effects = (text: string) => partial(text).problems.map((p) => `${p.path}:${p.effect}`);

test('partial: a bad plan is left out, the good ones stay in order, and the problem says so', () => {
  const { config, problems } = partial(
    `config pricing 'a'\n\toption price_per_step 1\n` +
      `config pricing 'big'\n\toption metric bytes\n\toption step_size 1TiB\n\toption max_steps ` +
      `10000\n\toption price_per_step 1\n` +
      `config pricing 'b'\n\toption price_per_step 2\n\toption metric bytes\n`,
  );
  assert.equal(
    config.pricing.map((p) => p.id),
    ['a', 'b'],
  );
  assert.equal(
    problems.map((p) => [p.path, p.effect, p.value]),
    [['pricing[big].max_steps', 'plan-left-out', '10000']],
  );
  assert.match(problems[0]!.reason, /step_size × max_steps must be at most 9007199254740991 bytes/);
});

test('partial: bad main and limits options fall back to their defaults; the rest of main applies', () => {
  const { config, problems } = partial(
    `config sluice 'main'\n\toption poll_interval 0.01\n\toption workers 3\n\toption state_dir rel\n` +
      `${PLAN}config limits 'limits'\n\toption max_sessions x\n\toption max_devices_per_user 2\n`,
  );
  assert.equal([config.main.pollIntervalMs, config.main.workers, config.main.stateDir], [2000, 3, '/etc/sluice']);
  assert.equal([config.limits.maxSessions, config.limits.maxDevicesPerUser], [0, 2]);
  assert.equal(
    problems.map((p) => `${p.path}:${p.effect}`),
    ['main.state_dir:default-used', 'main.poll_interval:default-used', 'limits.max_sessions:default-used'],
  );
});

test('partial: an enabled upstream with a problem is disabled; a disabled one is never checked', () => {
  const { config, problems } = partial(
    `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n` +
      `config mqtt 'mqtt'\n\toption enabled 1\n\toption url mqtt://b\nconfig escrow 'escrow'\n\toption enabled ` +
      `0\n\toption facilitator_url x\n`,
  );
  assert.equal([config.radius.enabled, config.mqtt.enabled, config.escrow.enabled], [false, true, false]);
  assert.equal(config.radius.servers, ['h'], 'the parsed values stay, only enabled is switched off');
  assert.equal(
    problems.map((p) => `${p.path}:${p.effect}`),
    ['radius.secret:section-disabled'],
  );
});

test(
  'hook: read when enabled; a bad value disables the section, named hook.<option>, the secret never echoed; the ' +
    'rest applies',
  () => {
    const good = load(
      `${PLAN}config hook 'hook'\n\toption enabled 1\n\toption url 'https://pc.example/h'\n\toption secret ` +
        `'${'s'.repeat(16)}'\n` +
        `\toption timeout 5\n\toption backoff_max 60\n\toption queue_max 256KiB\n`,
    ).hook;
    assert.equal(good, {
      enabled: true,
      url: 'https://pc.example/h',
      secret: 's'.repeat(16),
      timeoutMs: 5000,
      backoffMaxMs: 60_000,
      queueMax: 262144,
    });
    const { config, problems } = partial(
      `${PLAN}config hook 'hook'\n\toption enabled 1\n\toption url 'ftp://pc.example/h'\n\toption secret 'short'\n` +
        `\toption timeout 0\n\toption backoff_max x\n\toption queue_max 1KiB\nconfig limits 'limits'\n\toption ` +
        `max_sessions 7\n`,
    );
    assert.equal([config.pricing.map((p) => p.id), config.limits.maxSessions, config.hook.enabled], [['p'], 7, false]);
    assert.equal(
      problems.map((p) => `${p.path}:${p.effect}`),
      [
        'hook.url:section-disabled',
        'hook.timeout:section-disabled',
        'hook.backoff_max:section-disabled',
        'hook.queue_max:section-disabled',
        'hook.secret:section-disabled',
      ],
    );
    assert.not.ok(
      problems.some((p) => JSON.stringify(p).includes('short')),
      'the secret is not echoed',
    );
    assert.equal(
      effects(`${PLAN}config hook 'hook'\n\toption enabled 0\n\toption url nonsense\n`),
      [],
      'disabled: not validated',
    );
    assert.equal(
      effects(`${PLAN}config hook 'hook'\n\toption enabled 1\n\toption url 'http://pc.example/h'\n`),
      ['hook.secret:section-disabled'],
      'unsigned posts are refused',
    );
  },
);

test(
  'partial: escrow with a plan lacking an asset leaves that ' + 'plan out; escrow itself broken leaves the plans alone',
  () => {
    const escrow =
      `config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f\n\toption address ` +
      `0x${'b'.repeat(40)}\n\toption seller 0x${'c'.repeat(40)}\n`;
    const withAsset = `config pricing 'x'\n\toption price_per_step 1\n\toption asset 0x${'a'.repeat(40)}\n`;
    const r = partial(`${PLAN}${withAsset}${escrow}`);
    assert.equal([r.config.escrow.enabled, r.config.pricing.map((p) => p.id)], [true, ['x']]);
    assert.equal(effects(`${PLAN}${withAsset}${escrow}`), ['pricing[p].asset:plan-left-out']);
    const broken = partial(`${PLAN}config escrow 'escrow'\n\toption enabled 1\n`);
    assert.equal([broken.config.escrow.enabled, broken.config.pricing.map((p) => p.id)], [false, ['p']]);
    // The strict form reports the asset too (what LuCI's form checks: escrow as configured).
    assert.ok(paths(`${PLAN}config escrow 'escrow'\n\toption enabled 1\n`).includes('pricing[p].asset'));
  },
);

test('partial: no plan left is reported as such; a clean file has no problems', () => {
  assert.equal(effects(`config pricing 'p'\n\toption price_per_step x\n`), [
    'pricing[p].price_per_step:plan-left-out',
    'pricing:no-plan',
  ]);
  assert.equal(effects(''), ['pricing:no-plan']);
  assert.equal(partial(PLAN).problems, []);
});

test('loadConfigPartial: read and parse errors still throw (nothing to run on)', async () => {
  for (const [readFile, code] of [
    [
      async () => {
        throw new Error('ENOENT');
      },
      'ERR_CONFIG_READ',
    ],
    [async () => "config sluice 'main\n", 'ERR_UCI_PARSE'],
  ] as const) {
    try {
      await loadConfigPartial('/c', { readFile, hostname: 'h' });
      assert.unreachable('should throw');
    } catch (err) {
      assert.ok(isSluiceError(err) && err.code === code, String(err));
    }
  }
  const ok = await loadConfigPartial('/c', {
    readFile: async () => `config pricing 'p'\n\toption price_per_step 1\n\toption decimals x\n`,
    hostname: 'h',
  });
  assert.equal(ok.config.pricing, []);
});

test.run();

test(
  'batch_settlement: off by default; read when enabled; a withdraw delay outside 900 s – 30 days or no receiver ' +
    'disables it',
  () => {
    const c = load(PLAN);
    assert.is(c.batchSettlement.enabled, false);
    const section = (extra: string) =>
      `${PLAN}config batch_settlement 'batch_settlement'\n\toption enabled 1\n\toption facilitator_url ` +
      `http://f:4021\n` +
      `\toption network base-sepolia\n\toption receiver 0x${'A'.repeat(40)}\n\toption receiver_authorizer ` +
      `0x${'b'.repeat(40)}\n${extra}`;
    assert.equal(
      load(section('\toption withdraw_delay 900\n\toption refund idle\n\toption refund_idle 60\n')).batchSettlement,
      {
        enabled: true,
        facilitatorUrl: 'http://f:4021',
        network: 'eip155:84532',
        chainId: 84532,
        receiver: `0x${'a'.repeat(40)}`,
        receiverAuthorizer: `0x${'b'.repeat(40)}`,
        withdrawDelay: 900,
        refund: 'idle',
        refundIdleMs: 60_000,
        timeoutMs: 15_000,
        tokenName: '',
        tokenVersion: '2',
      },
    );
    for (const [extra, path] of [
      ['\toption withdraw_delay 899\n', 'batch_settlement.withdraw_delay'],
      ['\toption withdraw_delay 2592001\n', 'batch_settlement.withdraw_delay'],
      ['\toption refund sometimes\n', 'batch_settlement.refund'],
    ] as const) {
      const r = configFromUciPartial(parseUci(section(extra)), { hostname: 'router1' });
      assert.is(r.config.batchSettlement.enabled, false, extra);
      assert.equal(
        r.problems.map((p) => `${p.path}:${p.effect}`),
        [`${path}:section-disabled`],
      );
    }
    const noReceiver = configFromUciPartial(parseUci(section('').replace(/\toption receiver 0x.*\n/, '')), {
      hostname: 'router1',
    });
    assert.equal(
      noReceiver.problems.map((p) => p.path),
      ['batch_settlement.receiver'],
    );
  },
);

test(
  'upto: off by default; read when enabled; a bad pay_to, ' + 'network, window or URL disables it with a clear problem',
  () => {
    const c = load(PLAN);
    assert.is(c.upto.enabled, false);
    const section = (extra: string) =>
      `${PLAN}config upto 'upto'\n\toption enabled 1\n\toption facilitator_url http://f:4021\n` +
      `\toption network base-sepolia\n\toption pay_to 0x${'A'.repeat(40)}\n${extra}`;
    assert.equal(load(section('\toption max_timeout_seconds 7200\n\toption timeout 5\n')).upto, {
      enabled: true,
      facilitatorUrl: 'http://f:4021',
      network: 'eip155:84532',
      chainId: 84532,
      payTo: `0x${'a'.repeat(40)}`,
      maxTimeoutSeconds: 7200,
      timeoutMs: 5000,
    });
    assert.is(load(section('')).upto.maxTimeoutSeconds, 172_800);
    for (const [extra, path] of [
      ['\toption max_timeout_seconds 899\n', 'upto.max_timeout_seconds'],
      ['\toption max_timeout_seconds 2592001\n', 'upto.max_timeout_seconds'],
      ['\toption max_timeout_seconds 1h\n', 'upto.max_timeout_seconds'],
      ['\toption timeout 0\n', 'upto.timeout'],
      ['\toption network solana\n', 'upto.network'],
    ] as const) {
      const r = configFromUciPartial(parseUci(section(extra)), { hostname: 'router1' });
      assert.is(r.config.upto.enabled, false, extra);
      assert.equal(
        r.problems.map((p) => `${p.path}:${p.effect}`),
        [`${path}:section-disabled`],
      );
    }
    const noPayTo = configFromUciPartial(parseUci(section('').replace(/\toption pay_to 0x.*\n/, '')), {
      hostname: 'router1',
    });
    assert.equal(
      noPayTo.problems.map((p) => `${p.path}: ${p.reason}`),
      ['upto.pay_to: is required: the address settled money goes to'],
    );
    const badPayTo = configFromUciPartial(
      parseUci(section('').replace(/\toption pay_to 0x.*\n/, '\toption pay_to 0x1234\n')),
      { hostname: 'router1' },
    );
    assert.equal(
      badPayTo.problems.map((p) => `${p.path}: ${p.reason}`),
      ['upto.pay_to: must be an address (0x and 40 hex digits)'],
    );
    const badUrl = configFromUciPartial(parseUci(section('').replace('http://f:4021', 'ftp://f')), {
      hostname: 'router1',
    });
    assert.equal(
      badUrl.problems.map((p) => p.path),
      ['upto.facilitator_url'],
    );
  },
);

test('pricing: a speed tier (rate_down / rate_up), validated with a clear error', () => {
  const c = load(
    `config pricing 'slow'\n\toption price_per_step 1\n\toption rate_down 2mbit\n\toption rate_up 512kbit\n` +
      `config pricing 'fast'\n\toption price_per_step 2\n\toption rate_down 8M\n` +
      `config pricing 'free'\n\toption price_per_step 0\n\toption step_size 15m\n\toption trial_every ` +
      `1d\n\toption rate_down 1mbit\n` +
      `config pricing 'open'\n\toption price_per_step 1\n`,
  );
  assert.is(c.pricing[0]!.rateDownBps, 2_000_000);
  assert.is(c.pricing[0]!.rateUpBps, 512_000);
  assert.is(c.pricing[1]!.rateDownBps, 8_000_000);
  assert.is(c.pricing[1]!.rateUpBps, undefined, 'absent: upload not limited');
  assert.is(c.pricing[2]!.rateDownBps, 1_000_000, 'a trial plan may be throttled');
  assert.is(c.pricing[3]!.rateDownBps, undefined);
  const bad = (options: string) => paths(`config pricing 'x'\n\toption price_per_step 1\n${options}`);
  assert.equal(bad(`\toption rate_down fast\n`), ['pricing[x].rate_down']);
  assert.equal(bad(`\toption rate_down 0\n`), ['pricing[x].rate_down']);
  assert.equal(bad(`\toption rate_up 2MiB\n`), ['pricing[x].rate_up'], 'a size is not a rate');
  assert.equal(bad(`\toption rate_up 11gbit\n`), ['pricing[x].rate_up']);
  assert.match(
    problems(`config pricing 'x'\n\toption price_per_step 1\n\toption rate_down -2mbit\n`)[0]!.reason,
    /must be a rate from 8kbit/,
  );
});

test('main: shape_device and tc', () => {
  const c = load(`config main 'main'\n\toption shape_device wlan0\n\toption tc '/usr/bin/ip netns exec r tc'\n${PLAN}`);
  assert.equal(c.main.shapeDevices, ['wlan0']);
  assert.equal(c.main.tc, ['/usr/bin/ip', 'netns', 'exec', 'r', 'tc']);
  assert.equal(load(PLAN).main.shapeDevices, []);
  assert.equal(paths(`config main 'main'\n\toption shape_device 'br lan; rm'\n${PLAN}`), ['main.shape_device']);
  // A hotspot on several devices: every one is metered.
  const two = load(`config main 'main'\n\toption shape_device ' br-guest  phy1-ap0 br-guest'\n${PLAN}`);
  assert.equal(two.main.shapeDevices, ['br-guest', 'phy1-ap0']);
});

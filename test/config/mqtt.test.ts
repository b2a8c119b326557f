// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { redactConfig } from '../../src/config/redact.ts';

const PLAN = "config pricing 'p'\n\toption price_per_step 5\n";
const load = (mqtt: string) =>
  configFromUciPartial(parseUci(`${PLAN}config mqtt 'mqtt'\n${mqtt}`, 'test'), { hostname: 'r1' });
const paths = (mqtt: string): string[] =>
  load(mqtt)
    .problems.map((p) => p.path)
    .sort();

test('every mqtt option is read, with units', () => {
  const { config, problems } = load(
    [
      'option enabled 1',
      "option url 'mqtts://broker:8883'",
      'option username u',
      'option password pw',
      'option client_id c-1',
      'option keepalive 30',
      'option protocol 3.1.1',
      'option ca_file /etc/ssl/ca.pem',
      'option cert_file /c.pem',
      'option key_file /k.pem',
      "option topic_prefix 'isp/hotspots'",
      'option qos 2',
      'option format json',
      'option max_payload 16KiB',
      'option max_inflight 50',
      'option queue_dir /tmp/q',
      'option queue_max 4MiB',
      'option usage_expiry 0',
      'option status_interval 30',
      'option commands 1',
      'option command_secret 0123456789abcdef',
      'option command_window 60',
    ]
      .map((l) => `\t${l}\n`)
      .join(''),
  );
  assert.equal(problems, []);
  assert.equal(config.mqtt, {
    enabled: true,
    url: 'mqtts://broker:8883',
    username: 'u',
    password: 'pw',
    clientId: 'c-1',
    keepaliveMs: 30_000,
    protocol: '3.1.1',
    caFile: '/etc/ssl/ca.pem',
    certFile: '/c.pem',
    keyFile: '/k.pem',
    topicPrefix: 'isp/hotspots',
    qos: 2,
    format: 'json',
    maxPayload: 16384,
    maxInflight: 50,
    queueDir: '/tmp/q',
    queueMax: 4 * 1048576,
    usageExpiryMs: 0,
    statusIntervalMs: 30_000,
    commands: true,
    commandSecret: '0123456789abcdef',
    commandWindowMs: 60_000,
  });
  const view = redactConfig(config);
  assert.equal([view.mqtt.password, view.mqtt.commandSecret], ['***', '***']);
});

test('bad mqtt settings are reported as mqtt.<option>, secrets without their value', () => {
  assert.equal(
    paths(
      [
        'option enabled 1',
        "option url 'http://b'",
        'option format xml',
        'option protocol 4',
        'option keepalive 1',
        'option ca_file rel.pem',
        'option cert_file /c.pem',
        'option max_payload 10',
        'option queue_max 1k',
        'option max_inflight 70000',
        "option client_id 'has space'",
        'option commands 1',
        'option command_secret short',
      ]
        .map((l) => `\t${l}\n`)
        .join(''),
    ),
    [
      'mqtt.ca_file',
      'mqtt.client_id',
      'mqtt.command_secret',
      'mqtt.format',
      'mqtt.keepalive',
      'mqtt.key_file',
      'mqtt.max_inflight',
      'mqtt.max_payload',
      'mqtt.protocol',
      'mqtt.queue_max',
      'mqtt.url',
    ],
  );
  const secret = load(
    '\toption enabled 1\n\toption url mqtt://b\n\toption commands 1\n\toption command_secret tiny\n',
  ).problems;
  assert.is(secret.length, 1);
  assert.not.ok(JSON.stringify(secret).includes('tiny'), 'the secret is not echoed');
  assert.equal(
    paths('\toption enabled 1\n\toption url mqtt://b\n\toption max_payload 2MiB\n\toption queue_max 1MiB\n'),
    ['mqtt.max_payload'],
  );
});

test('a bad mqtt section disables mqtt and leaves the rest running; a disabled one is not validated', () => {
  const { config, problems } = load("\toption enabled 1\n\toption url 'nope'\n");
  assert.is(config.mqtt.enabled, false);
  assert.equal(
    problems.map((p) => p.path),
    ['mqtt.url'],
  );
  assert.equal(paths('\toption enabled 0\n\toption format xml\n'), []);
});

test.run();

// tier: daemon
// files/etc/init.d/sluice's reload logic, run by a real sh (dash; ash on the router) with OpenWrt's helpers replaced
// by recorders (a file: ubus runs in a command substitution, a subshell): what `/etc/init.d/sluice reload` (and so
// LuCI's Save & Apply) does for each daemon answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const INIT = new URL('../../files/etc/init.d/sluice', import.meta.url).pathname;

/**
 * Sources the script after stubs of /etc/rc.common's environment and runs reload_service. `enabled` is what
 * config_get_bool reports; `reply` what `ubus call sluice reload` prints (undefined: the call fails).
 */
function reload(enabled: '0' | '1', reply: string | undefined): string[] {
  const stubs = `
calls="$(mktemp)"
note() { printf '|%s' "$*" >> "$calls"; }
config_load() { note "config_load $1"; }
config_get_bool() { eval "$1=${enabled}"; }
config_get() { eval "$1=\\$4"; }
stop() { note stop; }
start() { note start; }
logger() { note "logger $*"; }
ubus() { note "ubus $*"; ${reply === undefined ? 'return 4' : `printf '%s' '${reply}'`}; }
jsonfilter() {
  node -e 'const key=/^@\\.(\\w+)\\[\\*\\]$/.exec(process.argv[1])[1];let s="";process.stdin.on("data",d=>s+=d)
    .on("end",()=>{for(const x of JSON.parse(s)[key]??[])console.log(x)})' "$2"
}
`;
  const r = spawnSync('sh', ['-c', `${stubs}\n. '${INIT}'\nreload_service\ncat "$calls"; rm -f "$calls"`], {
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('|').filter(Boolean);
}

test(
  'enabled 0: reload runs start (procd drops the instance, keeps the service and its trigger), not stop, and ' +
    'asks the daemon nothing',
  () => {
    // `stop` would delete the service with its config.change trigger: enabled 1 + Save & Apply would then do nothing.
    assert.equal(reload('0', '{"restart_required":[]}'), ['config_load sluice', 'start']);
  },
);

test('a reload the daemon applies in full: nothing else happens', () => {
  assert.equal(reload('1', '{"reloaded":true,"restart_required":[]}'), [
    'config_load sluice',
    'ubus -t 30 call sluice reload',
  ]);
});

test('restart-only options changed: the service is restarted and the log says which', () => {
  const calls = reload('1', '{"reloaded":true,"restart_required":["main.state_dir","main.workers"]}');
  assert.equal(calls.slice(0, 2), ['config_load sluice', 'ubus -t 30 call sluice reload']);
  assert.match(calls[2]!, /^logger -t sluice restarting: .*main\.state_dir main\.workers/);
  assert.equal(calls.slice(3), ['stop', 'start']);
});

test("http.listen moved by the reload: start, so procd takes the new port's fw4 rule and fw4 re-reads it", () => {
  const calls = reload('1', '{"reloaded":true,"restart_required":[],"moved":["http.listen"]}');
  assert.equal(calls.slice(0, 2), ['config_load sluice', 'ubus -t 30 call sluice reload']);
  assert.match(calls[2]!, /^logger -t sluice moved: http\.listen/);
  assert.equal(calls.slice(3), ['start'], 'no stop: the daemon runs on, sessions and all');
});

test(
  'the daemon does not answer on ubus (stopped, or refusing ' + 'the file): start (procd starts it or sends SIGHUP)',
  () => {
    assert.equal(reload('1', undefined), ['config_load sluice', 'ubus -t 30 call sluice reload', 'start']);
  },
);

/** start_service with `http.listen` set to `listen`: the procd and json calls it makes, in order. */
function start(listen: string, enabled: '0' | '1' = '1', tollgateListen = ''): string[] {
  const stubs = `
calls="$(mktemp)"
note() { printf '|%s' "$*" >> "$calls"; }
config_load() { :; }
config_get_bool() { eval "$1=${enabled}"; }
# state_dir: an existing directory, so start_service creates nothing
config_get() {
  case "$2.$3" in
    http.listen) eval "$1='${listen}'" ;;
    tollgate.listen) eval "$1='${tollgateListen}'" ;;
    *) eval "$1=/tmp" ;;
  esac
}
procd_open_instance() { note open_instance; }
procd_close_instance() { note close_instance; }
procd_set_param() { [ "$1" = command ] && note "command $2"; :; }
procd_open_data() { note open_data; }
procd_close_data() { note close_data; }
json_add_array() { note "array $1"; }
json_close_array() { note close_array; }
json_add_object() { note object; }
json_close_object() { note close_object; }
json_add_string() { note "$1=$2"; }
`;
  const r = spawnSync('sh', ['-c', `${stubs}\n. '${INIT}'\nstart_service\ncat "$calls"; rm -f "$calls"`], {
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: '/tmp' },
  });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('|').filter(Boolean);
}

const CMD = 'command /usr/bin/sluice';

test('http.listen set: the instance carries a fw4 rule rejecting its port from the wan zone', () => {
  const rule = [
    'open_data',
    'array firewall',
    'object',
    'type=rule',
    'name=sluice-x402-no-wan',
    'src=wan',
    'proto=tcp',
    'dest_port=2122',
    'target=REJECT',
    'close_object',
    'close_array',
    'close_data',
  ];
  assert.equal(start('192.168.1.1:2122'), ['open_instance', CMD, ...rule, 'close_instance']);
  assert.equal(start('[fd00::1]:8402'), [
    'open_instance',
    CMD,
    ...rule.map((x) => (x === 'dest_port=2122' ? 'dest_port=8402' : x)),
    'close_instance',
  ]);
});

test(
  "tollgate.listen set: a rule rejecting TollGate's port " + "from the wan zone, beside the LAN endpoint's or alone",
  () => {
    const rule = (name: string, port: string) => [
      'object',
      'type=rule',
      `name=${name}`,
      'src=wan',
      'proto=tcp',
      `dest_port=${port}`,
      'target=REJECT',
      'close_object',
    ];
    assert.equal(start('192.168.1.1:2122', '1', '192.168.1.1:2121'), [
      'open_instance',
      CMD,
      'open_data',
      'array firewall',
      ...rule('sluice-x402-no-wan', '2122'),
      ...rule('sluice-tollgate-no-wan', '2121'),
      'close_array',
      'close_data',
      'close_instance',
    ]);
    assert.equal(start('', '1', '[fd00::1]:2121'), [
      'open_instance',
      CMD,
      'open_data',
      'array firewall',
      ...rule('sluice-tollgate-no-wan', '2121'),
      'close_array',
      'close_data',
      'close_instance',
    ]);
  },
);

test('http.listen empty (the endpoint is off): no firewall data', () => {
  assert.equal(start(''), ['open_instance', CMD, 'close_instance']);
});

test('the instance runs /usr/bin/sluice, so procd tags its log lines sluice[pid] (not node[pid])', () => {
  assert.equal(
    start('').filter((c) => c.startsWith('command ')),
    ['command /usr/bin/sluice'],
  );
});

test(
  'enabled 0: start_service opens no instance and returns 0 (rc.common still registers the service and its ' +
    'triggers)',
  () => {
    assert.equal(start('', '0'), []);
  },
);

test('fw4 is told to re-read service rules when the service starts and stops', () => {
  const text = readFileSync(INIT, 'utf8');
  for (const fn of ['service_started', 'service_stopped']) {
    assert.match(text, new RegExp(`${fn}\\(\\) \\{\\n\\tprocd_set_config_changed firewall\\n\\}`), fn);
  }
});

test.run();

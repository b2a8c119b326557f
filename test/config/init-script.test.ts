// files/etc/init.d/sluice's reload logic, run by a real sh (dash; ash on the router) with OpenWrt's helpers replaced
// by recorders (a file: ubus runs in a command substitution, a subshell): what `/etc/init.d/sluice reload` (and so LuCI's Save & Apply) does for each daemon answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

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
jsonfilter() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const x of JSON.parse(s).restart_required??[])console.log(x)})'; }
`;
  const r = spawnSync('sh', ['-c', `${stubs}\n. '${INIT}'\nreload_service\ncat "$calls"; rm -f "$calls"`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('|').filter(Boolean);
}

test('enabled 0: reload stops the service and asks the daemon nothing', () => {
  assert.equal(reload('0', '{"restart_required":[]}'), ['config_load sluice', 'stop']);
});

test('a reload the daemon applies in full: nothing else happens', () => {
  assert.equal(reload('1', '{"reloaded":true,"restart_required":[]}'), ['config_load sluice', 'ubus -t 30 call sluice reload']);
});

test('restart-only options changed: the service is restarted and the log says which', () => {
  const calls = reload('1', '{"reloaded":true,"restart_required":["main.state_dir","main.workers"]}');
  assert.equal(calls.slice(0, 2), ['config_load sluice', 'ubus -t 30 call sluice reload']);
  assert.match(calls[2]!, /^logger -t sluice restarting: .*main\.state_dir main\.workers/);
  assert.equal(calls.slice(3), ['stop', 'start']);
});

test('the daemon does not answer on ubus (stopped, or refusing the file): start (procd starts it or sends SIGHUP)', () => {
  assert.equal(reload('1', undefined), ['config_load sluice', 'ubus -t 30 call sluice reload', 'start']);
});

test.run();

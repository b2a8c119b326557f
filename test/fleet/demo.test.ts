// tier: daemon
/**
 * `npm run demo -- --fleet` as a newcomer runs it (the router's bundle handing over to the fleet's): it starts, prints
 * the pace at which usage reaches the broker, the dashboard's address and an admin login, the dashboard takes that
 * login and shows the three routers, and Ctrl-C (SIGINT to its process group, as a terminal sends it) stops it cleanly
 * (exit 0).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { BUNDLE, ensureBuilt } from '../daemon/harness.ts';
import { until } from '../helpers/until.ts';

function http(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const [how, toGroup] of [
  ['Ctrl-C (SIGINT to its process group)', true],
  ['SIGINT to the parent alone', false],
] as const)
  test(`the fleet demo: its dashboard and printed login work; ${how} stops it and every child`, () => demo(toGroup));

async function demo(toGroup: boolean): Promise<void> {
  await ensureBuilt();
  // Its own process group, as a terminal's foreground job: Ctrl-C is SIGINT to the whole group (the router's demo
  // and the fleet's program it runs), which is what the demo is written for.
  const child = spawn(process.execPath, [BUNDLE, 'demo', '--fleet', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is gone.
    }
  };
  try {
    await until(
      () => /password: \S+/.test(out) || child.exitCode !== null,
      300_000,
      () => `the login:\n${out}`,
      250,
    );
    assert.is(child.exitCode, null, out);
    // Said, not hidden: the routers' usage reaches the dashboard at their checkpoint's pace (told once on flash).
    assert.match(out, /usage reaches the broker once a router's checkpoint has written it to flash: every 10 s here/);
    const url = /dashboard: (http:\/\/\S+?)\/?\s/.exec(out)![1]!;
    const password = /password: (\S+)/.exec(out)![1]!;
    const wrong = await http(`${url}/login`, 'POST', form(url), 'user=admin&password=not-the-one-printed');
    assert.is(wrong.status, 401);
    const login = await http(`${url}/login`, 'POST', form(url), `user=admin&password=${encodeURIComponent(password)}`);
    assert.is(login.status, 303, login.text);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    // The routers appear once each has reported (its first status): polled, not assumed.
    let page = '';
    await until(
      async () => {
        const routers = await http(`${url}/routers`, 'GET', { cookie });
        assert.is(routers.status, 200);
        page = routers.text;
        return ['cafe-north', 'cafe-south', 'station'].every((name) => page.includes(name));
      },
      300_000,
      () => `the three routers on the Routers page:\n${page}\n${out}`,
      250,
    );
    if (toGroup) group('SIGINT');
    else process.kill(child.pid!, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((r) => (timer = setTimeout(() => r('still running'), 300_000)));
    const code = await Promise.race([exited, late]);
    clearTimeout(timer);
    assert.is(code, 0, `the demo's exit after the signal:\n${out}`);
    // Nothing of the demo left running: its routers, their workers, the fleet's program.
    await until(
      () => !groupAlive(child.pid!),
      60_000,
      () => `the demo's process group gone:\n${out}`,
      250,
    );
  } finally {
    group('SIGKILL');
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function form(url: string): Record<string, string> {
  return { 'content-type': 'application/x-www-form-urlencoded', origin: url };
}

test.run();

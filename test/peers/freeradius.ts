/**
 * A real FreeRADIUS (Debian's `freeradius -X`, installed by .ci/run) on private ports, with the test config in
 * test/fixtures/freeradius (vouchers testuser/testpass and biguser/bigpass; accounting to <run>/detail and
 * <run>/acct.log). stop() + start() keeps the ports and files, so tests can cut the server and bring it back.
 * `sellOnce` configures it as a voucher server does whose vouchers sell once: its vouchers (users file entries, read
 * before the fixture's), each accepted once and rejected after that for as long as the server runs (rlm_cache), every
 * Access-Accept written to <run>/auth.log (accepted()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/net.ts';

const FIXTURES = new URL('../fixtures/freeradius/', import.meta.url).pathname;

export interface DetailRecord {
  [attribute: string]: string;
}

export class FreeRadius {
  private child: ChildProcess | undefined;
  output = '';

  private constructor(
    readonly dir: string,
    readonly authPort: number,
    readonly acctPort: number,
    readonly secret: string,
    private readonly env: Record<string, string>,
    private readonly debug = true,
  ) {}

  static available(): boolean {
    return existsSync('/usr/sbin/freeradius');
  }

  /** `debug: false` runs it threaded without -X (what a benchmark needs); tests keep -X for its per-packet log. */
  static async start(
    options: { secret?: string; replyMessageAuthenticator?: boolean; debug?: boolean; sellOnce?: string } = {},
  ): Promise<FreeRadius> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-radiusd-'));
    for (const f of ['radiusd.conf', 'users', 'dictionary']) copyFileSync(join(FIXTURES, f), join(dir, f));
    if (options.sellOnce !== undefined) sellOnce(dir, options.sellOnce);
    writeFileSync(join(dir, 'acct_users'), '');
    mkdirSync(join(dir, 'run'));
    const env = { RADIUS_REPLY_MA: options.replyMessageAuthenticator ? 'yes' : 'no' };
    const peer = new FreeRadius(
      dir,
      await freePort(),
      await freePort(),
      options.secret ?? 'testing123',
      env,
      options.debug ?? true,
    );
    await peer.start();
    return peer;
  }

  get runDir(): string {
    return join(this.dir, 'run');
  }

  async start(): Promise<void> {
    if (this.child) return;
    // Through a small sh watchdog: if this test process dies (the runner's timeout kills it with SIGKILL), FreeRADIUS
    // goes too instead of lingering on its ports. SIGTERM to the watchdog stops FreeRADIUS at once.
    const watchdog =
      `"$@" & c=$!; trap 'kill -9 $c 2>/dev/null; exit 0' TERM; ` +
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 0.2; done; kill -9 $c ` +
      '2>/dev/null; wait $c';
    const child = spawn(
      '/bin/sh',
      ['-c', watchdog, 'sh', '/usr/sbin/freeradius', ...(this.debug ? ['-X'] : ['-f', '-l', 'stdout']), '-d', this.dir],
      {
        env: {
          ...process.env,
          ...this.env,
          RADIUS_RADDB: this.dir,
          RADIUS_RUNDIR: this.runDir,
          RADIUS_SECRET: this.secret,
          RADIUS_AUTH_PORT: String(this.authPort),
          RADIUS_ACCT_PORT: String(this.acctPort),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`freeradius not ready in 10 s:\n${this.output.slice(-2000)}`)),
        10_000,
      );
      const onData = (d: Buffer): void => {
        this.output += d.toString();
        if (this.output.length > 1_000_000) this.output = this.output.slice(-200_000);
        if (this.output.includes('Ready to process requests')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        this.child = undefined;
        reject(new Error(`freeradius exited ${code}:\n${this.output.slice(-2000)}`));
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      this.child = undefined;
    });
    this.output = '';
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    this.child = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The users FreeRADIUS accepted, one per Access-Accept, in order (with `sellOnce` only). */
  accepted(): string[] {
    const f = join(this.runDir, 'auth.log');
    return existsSync(f)
      ? readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  }

  /** One line per accounting packet (the fixture's linelog format). */
  acctLines(): string[] {
    const f = join(this.runDir, 'acct.log');
    return existsSync(f)
      ? readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  }

  /** The detail file's records, attribute → value as FreeRADIUS printed it (quotes removed). */
  detail(): DetailRecord[] {
    const f = join(this.runDir, 'detail');
    if (!existsSync(f)) return [];
    const records: DetailRecord[] = [];
    let current: DetailRecord | undefined;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (line === '') {
        current = undefined;
        continue;
      }
      if (!line.startsWith('\t')) {
        current = {};
        records.push(current);
        continue;
      }
      const m = /^\t(\S+) = (.*)$/.exec(line);
      if (m && current) current[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
    return records;
  }
}

/**
 * The fixture's config made a server whose vouchers sell once: `users` (users-file entries) read first; a name once
 * accepted is kept by rlm_cache (in memory) and rejected at its next Access-Request; each Accept is logged to auth.log.
 */
function sellOnce(dir: string, users: string): void {
  const conf = join(dir, 'radiusd.conf');
  const edits: Array<[string, string]> = [
    [
      'modules {\n',
      `modules {
	always reject {
		rcode = reject
	}
	cache sold_vouchers {
		driver = "rlm_cache_rbtree"
		key = "%{User-Name}"
		ttl = 31536000
		update {
			&control:Tmp-String-0 := "sold"
		}
	}
	linelog auth_log {
		filename  = \${logdir}/auth.log
		permissions = 0644
		format    = "%{User-Name}"
	}
`,
    ],
    [
      '\tauthorize {\n\t\tfiles\n',
      `\tauthorize {
		update control {
			&Cache-Status-Only := yes
		}
		sold_vouchers
		if (ok) {
			reject
		}
		update control {
			&Cache-Status-Only !* ANY
		}
		files
`,
    ],
    ['\tpost-auth {\n', '\tpost-auth {\n\t\tsold_vouchers\n\t\tauth_log\n'],
  ];
  let text = readFileSync(conf, 'utf8');
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`the fixture's radiusd.conf has no ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  writeFileSync(conf, text);
  writeFileSync(join(dir, 'users'), `${users}\n${readFileSync(join(dir, 'users'), 'utf8')}`);
}

/** Runs radclient (freeradius-utils) with attribute lines on stdin; returns its exit code and output. */
export function radclient(
  target: string,
  command: 'disconnect' | 'coa' | 'acct' | 'auth',
  secret: string,
  attributes: string,
  options: { timeoutS?: number; retries?: number } = {},
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    // -d: the fixture's dictionary adds ChilliSpot's gigaword attributes to Debian's.
    const child = spawn(
      '/usr/bin/radclient',
      [
        '-d',
        FIXTURES,
        '-x',
        '-r',
        String(options.retries ?? 1),
        '-t',
        String(options.timeoutS ?? 2),
        target,
        command,
        secret,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(attributes + '\n');
  });
}

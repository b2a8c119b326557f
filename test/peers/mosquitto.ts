/**
 * A real mosquitto (Debian's) for MQTT tests: a private config in a temp dir, a free port on 127.0.0.1, optional
 * password file, TLS (a throwaway CA and server certificate made with openssl, SAN 127.0.0.1; optionally a required
 * client certificate from the same CA) and persistence (so a
 * subscriber's persistent session survives a broker restart). stop()/start() keep the port and the files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/net.ts';
import { tailOf } from '../helpers/log-tails.ts';

export interface MosquittoOptions {
  /** Require this user and password (allow_anonymous false). */
  password?: { user: string; pass: string };
  tls?: boolean;
  /**
   * With tls: require a client certificate signed by the test CA (require_certificate); one is made in `clientCert`.
   */
  clientCert?: boolean;
  /** Keep subscriptions and queued messages across stop()/start(). */
  persistence?: boolean;
  /** Several users (name → password) and an acl_file's text (allow_anonymous false), e.g. docs/fleet.md's. */
  accounts?: { users: Record<string, string>; acl: string };
  /**
   * A configuration as a deployment's (docs/fleet.md's): its text with `/etc/mosquitto/` read as this broker's
   * directory and `listener 1883` / `listener 1884` as this broker's two ports (url, secondUrl); `files` (by their
   * /etc/mosquitto/ path) written there, `passwords` (file → user → password) made with mosquitto_passwd.
   */
  conf?: { text: string; files: Record<string, string>; passwords: Record<string, Record<string, string>> };
}

export function mosquittoInstalled(): boolean {
  return spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout?.includes('mosquitto version') ?? false;
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
}

export class Mosquitto {
  readonly dir: string;
  port = 0;
  /** With `conf`: its second listener's port (its `listener 1884`). */
  secondPort = 0;
  output = '';
  private child: ChildProcess | undefined;
  /** Stops printing its log when a wait times out (tailOf). */
  private untail = (): void => undefined;
  caFile = '';
  /** With `clientCert`: a certificate and key the broker accepts. */
  clientCert = { certFile: '', keyFile: '' };

  private constructor(readonly options: MosquittoOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-mosquitto-'));
  }

  get url(): string {
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
  }

  get secondUrl(): string {
    return `mqtt://127.0.0.1:${this.secondPort}`;
  }

  static async create(options: MosquittoOptions = {}): Promise<Mosquitto> {
    if (!mosquittoInstalled())
      throw new Error('mosquitto is not installed: apt-get install mosquitto mosquitto-clients (.ci/run does)');
    const m = new Mosquitto(options);
    m.port = await freePort();
    m.secondPort = await freePort();
    if (options.conf) m.writeDeployment(options.conf);
    else m.writeConfig();
    await m.start();
    return m;
  }

  private writeConfig(): void {
    const o = this.options;
    const lines = [
      'per_listener_settings true',
      // As root mosquitto would switch to the `mosquitto` user, which cannot read our temp files.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${this.port} 127.0.0.1`,
      // The default (1000) silently drops bursts queued for a slow subscriber.
      'max_queued_messages 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      `persistence ${o.persistence ? 'true' : 'false'}`,
      ...(o.persistence ? [`persistence_location ${this.dir}/`] : []),
    ];
    if (o.password) {
      run('mosquitto_passwd', ['-c', '-b', join(this.dir, 'passwd'), o.password.user, o.password.pass], this.dir);
      writeFileSync(join(this.dir, 'acl'), `user ${o.password.user}\ntopic readwrite #\n`);
      lines.push(
        'allow_anonymous false',
        `password_file ${join(this.dir, 'passwd')}`,
        `acl_file ${join(this.dir, 'acl')}`,
      );
    } else if (o.accounts) {
      const passwd = join(this.dir, 'passwd');
      writeFileSync(passwd, '');
      for (const [user, pass] of Object.entries(o.accounts.users))
        run('mosquitto_passwd', ['-b', passwd, user, pass], this.dir);
      writeFileSync(join(this.dir, 'acl'), o.accounts.acl);
      lines.push('allow_anonymous false', `password_file ${passwd}`, `acl_file ${join(this.dir, 'acl')}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (o.tls) {
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      run(
        'openssl',
        ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sluice test CA'],
        this.dir,
      );
      run('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], this.dir);
      writeFileSync(join(this.dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
      run(
        'openssl',
        [
          'x509',
          '-req',
          '-in',
          'server.csr',
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          'server.pem',
          '-days',
          '2',
          '-extfile',
          'san.ext',
        ],
        this.dir,
      );
      this.caFile = join(this.dir, 'ca.pem');
      lines.push(
        `cafile ${this.caFile}`,
        `certfile ${join(this.dir, 'server.pem')}`,
        `keyfile ${join(this.dir, 'server.key')}`,
      );
      if (o.clientCert) {
        run(
          'openssl',
          ['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=sluice-router'],
          this.dir,
        );
        run(
          'openssl',
          [
            'x509',
            '-req',
            '-in',
            'client.csr',
            '-CA',
            'ca.pem',
            '-CAkey',
            'ca.key',
            '-CAcreateserial',
            '-out',
            'client.pem',
            '-days',
            '2',
          ],
          this.dir,
        );
        this.clientCert = { certFile: join(this.dir, 'client.pem'), keyFile: join(this.dir, 'client.key') };
        lines.push('require_certificate true');
      }
    }
    writeFileSync(join(this.dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  }

  private writeDeployment(conf: NonNullable<MosquittoOptions['conf']>): void {
    const here = (text: string) => text.replaceAll('/etc/mosquitto/', `${this.dir}/`);
    for (const [path, text] of Object.entries(conf.files)) writeFileSync(here(path), text);
    for (const [path, users] of Object.entries(conf.passwords)) {
      writeFileSync(here(path), '');
      for (const [user, pass] of Object.entries(users))
        run('mosquitto_passwd', ['-b', here(path), user, pass], this.dir);
    }
    const text = here(conf.text)
      .replace(/^listener 1883$/m, `listener ${this.port} 127.0.0.1`)
      .replace(/^listener 1884$/m, `listener ${this.secondPort} 127.0.0.1`);
    const lines = [
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      `persistence_location ${this.dir}/`,
      text,
    ];
    writeFileSync(join(this.dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  }

  /** A second CA that did not sign the server's certificate (for the refused-TLS test). */
  otherCa(): string {
    run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'other.key',
        '-out',
        'other.pem',
        '-days',
        '2',
        '-subj',
        '/CN=other CA',
      ],
      this.dir,
    );
    return join(this.dir, 'other.pem');
  }

  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.untail();
    this.untail = tailOf(`mosquitto :${this.port}`, () => this.output);
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${this.output}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = createConnection({ host: '127.0.0.1', port: this.port }, () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${this.port}: ${this.output}`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  /** SIGTERM (mosquitto saves its persistence file) and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  async close(): Promise<void> {
    this.untail();
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// tier: peers; needs exim4 openssl root
/**
 * The alert mail's SMTP client against a real submission server: exim4 with a configuration of its own (STARTTLS with
 * a certificate for `localhost` signed by a CA made for the run, AUTH only under TLS, no mail without AUTH, delivering
 * to a file read back). The operator trusts a private CA the documented way, NODE_EXTRA_CA_CERTS in sluice-fleet's
 * environment: the sending runs in a child process started with it. Checked: STARTTLS negotiated and AUTH PLAIN, and
 * AUTH LOGIN, accepted (exim's Received header and log say so), the mail delivered with its headers and body; a wrong
 * password is ERR_FLEET_ALERT_MAIL naming the AUTH refusal, nothing delivered; a certificate whose CA is not trusted,
 * or whose name is not the server's, is refused before any password is sent.
 */
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';
import { sendSmtp, type SmtpServer } from '../../src/fleet/dashboard/smtp.ts';
import { EXIM_PASSWORD, EXIM_USER, EximSubmission } from '../peers/exim-submission.ts';
import { waitFor } from './rig.ts';

const SMTP = new URL('../../src/fleet/dashboard/smtp.ts', import.meta.url).pathname;
const FROM = 'fleet-alerts@example.net';

let exim: EximSubmission;

test.before(async () => {
  exim = await EximSubmission.create();
});

test.after(async () => {
  await exim?.close();
});

const server = (o: Partial<SmtpServer> = {}): SmtpServer => ({
  host: 'localhost',
  port: exim.port,
  tls: 'starttls',
  user: EXIM_USER,
  password: EXIM_PASSWORD,
  ...o,
});

const mail = (subject: string) => ({
  from: FROM,
  to: ['ops@localhost'],
  message: [
    `From: ${FROM}`,
    'To: ops@localhost',
    `Subject: ${subject}`,
    'X-Sluice-Alert-Id: 41',
    '',
    'router: cafe-north',
    'what: router red (offline or silent)',
    '',
  ].join('\n'),
});

/** Sends in a child process whose environment trusts the run's CA, as an operator's sluice-fleet would: its error's
 * code and message, or null once the server accepted the mail. */
function sendTrusting(s: SmtpServer, m: ReturnType<typeof mail>): Promise<{ code: string; message: string } | null> {
  const script = `
    import { sendSmtp } from ${JSON.stringify(SMTP)};
    const [server, mail] = JSON.parse(process.argv[1]);
    sendSmtp(server, mail).then(
      () => process.stdout.write('null'),
      (e) => process.stdout.write(JSON.stringify({ code: e.code, message: e.message })),
    );
  `;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify([s, m])],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: exim.caFile }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as { code: string; message: string } | null) : reject(new Error(err)),
    ),
  );
}

/** The delivered message whose Subject is `subject`, once exim's queue is empty. */
async function delivered(subject: string): Promise<string> {
  const find = () => exim.messages().find((m) => m.includes(`\nSubject: ${subject}\n`));
  await waitFor(() => find() !== undefined && exim.queued() === 0, 30_000, `"${subject}" delivered`);
  return find()!;
}

const headers = (m: string) => m.split('\n\n')[0]!;
const body = (m: string) => m.split('\n\n').slice(1).join('\n\n');

for (const [mechanism, port] of [
  ['PLAIN', () => exim.port],
  ['LOGIN', () => exim.loginPort],
] as const)
  test(`STARTTLS, then AUTH ${mechanism} accepted: the mail delivered with its headers and body`, async () => {
    const subject = `[sluice fleet] cafe-north: by ${mechanism}`;
    assert.is(await sendTrusting(server({ port: port() }), mail(subject)), null);
    const m = await delivered(subject);
    // Received: exim's protocol "esmtpsa" is ESMTP, Secure (TLS), Authenticated; then the TLS version and the user.
    assert.match(headers(m), new RegExp(`^Received: .* with esmtpsa\\s+tls TLSv?1\\.[23] auth ${EXIM_USER} id `, 'm'));
    assert.match(headers(m), new RegExp(`^From: ${FROM}$`, 'm'));
    assert.match(headers(m), /^To: ops@localhost$/m);
    assert.match(headers(m), /^X-Sluice-Alert-Id: 41$/m);
    assert.is(body(m), 'router: cafe-north\nwhat: router red (offline or silent)\n\n');
    const received = exim
      .mainLog()
      .split('\n')
      .find((l) => l.includes(' <= ') && l.includes(` P=esmtpsa `));
    assert.ok(received, exim.mainLog());
    assert.match(exim.mainLog(), new RegExp(` A=${mechanism.toLowerCase()}:${EXIM_USER} `));
  });

test('a wrong password: ERR_FLEET_ALERT_MAIL naming the refused AUTH, nothing delivered', async () => {
  for (const [mechanism, port, what] of [
    ['PLAIN', exim.port, 'AUTH PLAIN'],
    ['LOGIN', exim.loginPort, 'the password'],
  ] as const) {
    const subject = `wrong password by ${mechanism}`;
    const err = await sendTrusting(server({ port, password: 'not-the-password' }), mail(subject));
    assert.is(err?.code, 'ERR_FLEET_ALERT_MAIL', mechanism);
    assert.is(err?.message, `SMTP localhost:${port} auth: ${what} answered 535 Incorrect authentication data`);
    assert.not.ok(exim.messages().some((m) => m.includes(subject)));
  }
});

test("a certificate whose CA is not trusted, or not the server's name: refused before any password", async () => {
  const logBefore = exim.mainLog();
  // This process's environment trusts only the system's CAs.
  const untrusted = await sendSmtp(server(), mail('untrusted CA')).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isSluiceError(untrusted, 'ERR_FLEET_ALERT_MAIL'), String(untrusted));
  assert.is(
    (untrusted as Error).message,
    `SMTP localhost:${exim.port} starttls: TLS: unable to verify the first certificate`,
  );
  // The CA trusted, but the certificate is localhost's, and the server is named by its address.
  const misnamed = await sendTrusting(server({ host: '127.0.0.1' }), mail('misnamed'));
  assert.is(misnamed?.code, 'ERR_FLEET_ALERT_MAIL');
  assert.match(
    misnamed!.message,
    /^SMTP 127\.0\.0\.1:\d+ starttls: TLS: Hostname\/IP does not match certificate's altnames/,
  );
  assert.not.ok(exim.messages().some((m) => /untrusted CA|misnamed/.test(m)));
  // No AUTH reached exim: neither an authenticator's failure nor a login logged since.
  const since = exim.mainLog().slice(logBefore.length);
  assert.not.match(since, /authenticator failed| A=/);
});

test.run();

// tier: daemon
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { BlobmsgType, UbusClient, runUbusCli } from '../../src/ubus/index.ts';
import type { UbusCliIo } from '../../src/ubus/cli.ts';
import { busKinds, startBus, waitFor } from './client-bus.ts';
import type { TestBus } from './client-bus.ts';

const T = BlobmsgType;

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], io: Partial<UbusCliIo> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runUbusCli(args, {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    stderrIsTTY: false,
    ...io,
  });
  return { code, out, err };
}

function runReal(bin: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

const hex8 = (id: number): string => id.toString(16).padStart(8, '0');

for (const kind of busKinds('cli.test.ts')) {
  const t = suite(`ubus CLI (${kind} broker)`);
  let bus: TestBus;
  let server: UbusClient;
  let s: string[];

  t.before(async () => {
    bus = await startBus(kind);
    s = ['-s', bus.socketPath];
    server = await UbusClient.connect({ socketPath: bus.socketPath });
    await server.addObject({
      path: 'cli.demo',
      methods: {
        echo: {
          policy: { str: T.STRING, num: T.INT32, flag: T.BOOL, list: T.ARRAY, obj: T.TABLE, big: T.INT64, d: T.DOUBLE },
          handler: (a) => ({ data: a }),
        },
        two: { handler: () => ({ data: [{ a: 1 }, { b: [] }] }) },
        none: { handler: () => undefined },
        denied: { handler: () => ({ status: 6 }) },
      },
    });
    await server.addObject({ path: 'cli.empty', methods: {} });
  });

  t.after(async () => {
    await server.close();
    await bus.cleanup();
  });

  t('list and list -v print paths, ids and signatures like ubus', async () => {
    const [demo] = await server.lookup('cli.demo');
    const [empty] = await server.lookup('cli.empty');
    const plain = await cli([...s, 'list', 'cli.*']);
    assert.equal(plain, { code: 0, out: 'cli.demo\ncli.empty\n', err: '' });
    const verbose = await cli([...s, '-v', 'list', 'cli.*']);
    assert.is(verbose.code, 0);
    assert.is(
      verbose.out,
      [
        `'cli.demo' @${hex8(demo!.id)}`,
        '\t"echo":{"str":"String","num":"Integer","flag":"Boolean","list":"Array","obj":"Table",' +
          '"big":"(unknown)","d":"(unknown)"}',
        '\t"two":{}',
        '\t"none":{}',
        '\t"denied":{}',
        `'cli.empty' @${hex8(empty!.id)}`,
        '',
      ].join('\n'),
    );
    // glibc getopt lets options follow the command.
    assert.equal(await cli([...s, 'list', '-v', 'cli.empty']), {
      code: 0,
      out: `'cli.empty' @${hex8(empty!.id)}\n`,
      err: '',
    });
    assert.equal(await cli([...s, 'list', 'cli.nothing']), { code: 4, out: '', err: 'Command failed: Not found\n' });
  });

  t('call pretty-prints each reply with tabs (blobmsg_format_json_indent)', async () => {
    const r = await cli([
      ...s,
      'call',
      'cli.demo',
      'echo',
      '{"str":"a\\"b\\u0001","num":-3,"flag":true,"list":[1,[],{}],"obj":{"x":null},"big":4294967296,"d":2.0,"junk":1}',
    ]);
    assert.is(r.err, '');
    assert.is(r.code, 0);
    assert.is(
      r.out,
      '{\n\t"str": "a\\"b\\u0001",\n\t"num": -3,\n\t"flag": true,\n\t"list": ' +
        '[\n\t\t1,\n\t\t[\n\t\t\t\n\t\t],\n\t\t{\n\t\t\t\n\t\t}\n\t],\n\t"obj": {\n\t\t"x": null\n\t},\n\t"big": ' +
        '4294967296,\n\t"d": 2\n}\n',
    );
    assert.equal(await cli([...s, '-S', 'call', 'cli.demo', 'two']), { code: 0, out: '{"a":1}\n{"b":[]}\n', err: '' });
    assert.equal(await cli([...s, 'call', 'cli.demo', 'none']), { code: 0, out: '', err: '' });
  });

  t('call errors: messages and exit codes follow ubus (stderr tty or not)', async () => {
    assert.equal(await cli([...s, 'call', 'cli.demo', 'nope']), {
      code: 253,
      out: '',
      err: 'Command failed: ubus call cli.demo nope (Method not found)\n',
    });
    assert.equal(await cli([...s, 'call', 'cli.demo', 'nope'], { stderrIsTTY: true }), {
      code: 3,
      out: '',
      err: 'Command failed: Method not found\n',
    });
    assert.equal(await cli([...s, 'call', 'cli.demo', 'denied', '{}']), {
      code: 250,
      out: '',
      err: 'Command failed: ubus call cli.demo denied {} (Permission denied)\n',
    });
    assert.equal(await cli([...s, 'call', 'cli.nothing', 'x']), {
      code: 4,
      out: '',
      err: 'Command failed: Not found\n',
    });
    assert.equal(await cli([...s, 'call', 'cli.demo', 'echo', '{oops']), {
      code: 244,
      out: '',
      err: 'Command failed: ubus call cli.demo echo {oops (Parsing message data failed)\n',
    });
    assert.equal(await cli([...s, '-S', 'call', 'cli.demo', 'echo', '[1]']), { code: 12, out: '', err: '' });
    const usage = await cli([...s, 'call', 'cli.demo']);
    assert.is(usage.code, 254);
    assert.match(usage.err, /^Usage: ubus \[<options>\] <command>/);
    assert.is((await cli([...s, 'frobnicate'])).code, 254);
    assert.is((await cli([])).code, 1);
    const bad = await cli(['-q', 'list']);
    assert.is(bad.code, 1);
    assert.match(bad.err, /^ubus: invalid option -- 'q'\nUsage:/);
    assert.equal(await cli(['-s', `${bus.socketPath}.missing`, 'list']), {
      code: 255,
      out: '',
      err: 'Failed to connect to ubus\n',
    });
  });

  t('listen prints { "type": {data} } lines; send encodes JSON like json-c', async () => {
    const ac = new AbortController();
    let out = '';
    const listening = runUbusCli([...s, 'listen', 'cli.*', 'probe'], {
      stdout: (x) => (out += x),
      stderr: () => undefined,
      stderrIsTTY: false,
      signal: ac.signal,
    });
    // Registration happens inside runUbusCli: probe until the listener is in place.
    const sender = await UbusClient.connect({ socketPath: bus.socketPath });
    try {
      await waitFor(() => {
        void sender.send('probe');
        return out.includes('probe');
      }, 'listener registered');
      assert.equal(
        await cli([...s, 'send', 'cli.one', '{"d":2.0,"i":1,"big":9999999999,"s":"x","b":false,"n":null,"a":[1.5]}']),
        { code: 0, out: '', err: '' },
      );
      assert.equal(await cli([...s, 'send', 'cli.two']), { code: 0, out: '', err: '' });
      await sender.send('other', { x: 1 });
      await waitFor(() => out.includes('cli.two'), 'events');
      await sender.ping();
      ac.abort();
      assert.is(await listening, 0);
      const lines = out.split('\n').filter((l) => l !== '' && !l.includes('probe'));
      assert.equal(lines, [
        '{ "cli.one": {"d":2.000000,"i":1,"big":9999999999,"s":"x","b":false,"n":null,"a":[1.500000]} }',
        '{ "cli.two": {} }',
      ]);
    } finally {
      ac.abort();
      sender.destroy();
    }
    assert.equal(await cli([...s, 'send', 'ubus.reserved']), {
      code: 6,
      out: '',
      err: 'Command failed: Permission denied\n',
    });
    assert.equal(await cli([...s, 'send', 'x', '{bad']), {
      code: 12,
      out: '',
      err: 'Command failed: Parsing message data failed\n',
    });
    assert.equal(await cli([...s, '-t', '1', 'listen', '']), {
      code: 255,
      out: '',
      err: "Error while registering for event '': Permission denied\n",
    });
  });

  t('subscribe prints notifications; a missing object is an error', async () => {
    const ac = new AbortController();
    let out = '';
    const subscribed = runUbusCli([...s, 'subscribe', 'cli.demo'], {
      stdout: (x) => (out += x),
      stderr: () => undefined,
      stderrIsTTY: false,
      signal: ac.signal,
    });
    const owner = await UbusClient.connect({ socketPath: bus.socketPath });
    const obj = await owner.addObject({ path: 'cli.pub', methods: {} });
    const ac2 = new AbortController();
    const sub2 = runUbusCli([...s, 'subscribe', 'cli.pub'], {
      stdout: (x) => (out += x),
      stderr: () => undefined,
      stderrIsTTY: false,
      signal: ac2.signal,
    });
    try {
      await waitFor(() => obj.subscriberCount > 0, 'subscriber');
      await obj.notify('status', { up: true });
      await waitFor(() => out.length > 0, 'notification');
      assert.is(out, '{ "status": {"up":true} }\n');
    } finally {
      ac.abort();
      ac2.abort();
      owner.destroy();
    }
    assert.is(await subscribed, 0);
    assert.is(await sub2, 0);
    assert.equal(await cli([...s, 'subscribe', 'cli.none']), {
      code: 255,
      out: '',
      err: "Error while registering for event 'cli.none': Not found\n",
    });
  });

  const realCli = process.env.SLUICE_REAL_UBUS_CLI;
  t('same output, errors and exit codes as the real ubus CLI (SLUICE_REAL_UBUS_CLI)', async () => {
    if (realCli === undefined || realCli === '') {
      console.log('  (skipped: set SLUICE_REAL_UBUS_CLI=/path/to/ubus to compare with the real CLI)');
      return;
    }
    const cases = [
      ['list'],
      ['-v', 'list'],
      ['list', 'cli.*'],
      ['list', 'nothing'],
      [
        'call',
        'cli.demo',
        'echo',
        '{"str":"é\\t","num":2147483647,"flag":false,"list":[null,-1.25,{"k":[]}],' +
          '"big":-9223372036854775808,"d":1e300}',
      ],
      ['-S', 'call', 'cli.demo', 'two'],
      ['call', 'cli.demo', 'none'],
      ['call', 'cli.demo', 'nope'],
      ['call', 'cli.demo', 'denied'],
      ['call', 'nothing', 'x'],
      ['call', 'cli.demo', 'echo', '{x'],
      ['send', 'cli.x', '{"a":[1,2]}'],
      ['send', 'ubus.x'],
    ];
    for (const args of cases) {
      // Asynchronous: the objects it calls are served by this very process.
      const real = await runReal(realCli, ['-s', bus.socketPath, ...args]);
      const ours = await cli(['-s', bus.socketPath, ...args]);
      assert.equal(ours, real, args.join(' '));
    }
  });

  t.run();
}

// tier: daemon
/**
 * The long-lived shell nft, conntrack and ip run through (portal/command-shell.ts): every run gives what a spawned
 * command gives (its stdout byte for byte, its stdin, its exit status and stderr), one shell serves them all, and a
 * run that hangs or whose output is refused is killed with its shell, the next run starting a fresh one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandShell } from '../../src/portal/command-shell.ts';

const shell = new CommandShell();
test.after(() => shell.close());

const run = (argv: string[], stdin = '', timeoutMs = 10_000) => shell.run({ argv, stdin, timeoutMs });

test('stdout byte for byte, stdin as given, exit status and stderr; one shell for every run', async () => {
  const a = await run(['printf', '%s', '{"a": 1}']);
  assert.equal(a.kind === 'exited' && [a.code, a.stdout?.toString()], [0, '{"a": 1}'], 'no newline added');
  // Quotes, $, backslashes and a line like the here-document's end reach stdin untouched.
  const input = `add element x { 'a' }\n$HOME \\n "q"\nSLUICE_x_IN\nlast`;
  const b = await run(['cat'], input);
  assert.equal(b.kind === 'exited' && b.stdout?.toString(), `${input}\n`);
  const c = await run(['sh', '-c', 'echo oops >&2; echo half; exit 3']);
  assert.equal(c.kind === 'exited' && [c.code, c.stdout?.toString(), c.stderr.trim()], [3, 'half\n', 'oops']);
  // Large output, over many pipe reads: every byte, nothing of the marker.
  const big = await run(['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done']);
  const lines = big.kind === 'exited' ? big.stdout!.toString().split('\n') : [];
  assert.is(lines.length, 20001);
  assert.is(lines[19999], 'line 19999');
  const arg = await run(['printf', '%s|', "it's", 'a b', '$x']);
  assert.equal(arg.kind === 'exited' && arg.stdout?.toString(), "it's|a b|$x|");
  assert.is(shell.started, 1, 'one shell served every run');
});

test('a command that cannot be found is a spawn failure', async () => {
  const r = await run(['sluice-no-such-command-here']);
  assert.is(r.kind, 'spawn-failed');
});

test('a run past its deadline is killed with its shell; the next runs on a fresh one', async () => {
  const started = shell.started;
  const r = await run(['sleep', '30'], '', 300);
  assert.equal(r, { kind: 'killed', why: 'timeout' });
  const next = await run(['echo', 'after']);
  assert.equal(next.kind === 'exited' && next.stdout?.toString(), 'after\n');
  assert.is(shell.started, started + 1);
});

test('output the caller refuses kills the run, its shell with it', async () => {
  let seen = 0;
  const r = await shell.run({
    argv: ['sh', '-c', 'head -c 200000 /dev/zero; sleep 30'],
    stdin: '',
    timeoutMs: 10_000,
    onStdout: (chunk) => {
      seen += chunk.length;
      return seen > 100_000 ? 'too much' : undefined;
    },
  });
  assert.equal(r, { kind: 'killed', why: 'output', refusal: 'too much' });
  const next = await run(['echo', 'ok']);
  assert.equal(next.kind === 'exited' && next.stdout?.toString(), 'ok\n');
});

test('runs asked at once are run one after the other, each with its own output', async () => {
  const outs = await Promise.all([1, 2, 3, 4].map((n) => run(['sh', '-c', `sleep 0.0${n}; echo ${n}`])));
  assert.equal(
    outs.map((o) => o.kind === 'exited' && o.stdout?.toString()),
    ['1\n', '2\n', '3\n', '4\n'],
  );
});

test.run();

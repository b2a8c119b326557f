// tier: fast
// One nft command per set for the element additions of a merged run (portal/nft-coalesce.ts): each set's elements
// join where its first came, held back past named objects only, never moved past a delete, a flush or a rule. The
// lines as text here; on the real kernel (four devices' openings of one run, seven commands, each device in every
// table): test/gate/own-valve.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coalesceElements } from '../../src/portal/nft-coalesce.ts';

/** What one opening hands the batcher (the kernel quota's, the counters', the IPv6 gate's and the own gate's lines). */
const opening = (n: number): string =>
  [
    `add quota netdev q q_${n} { over 1000 bytes }`,
    `add element netdev q up { mac${n} : "q_${n}" }`,
    `add counter netdev c cu_${n}`,
    `add element netdev c cup { mac${n} : "cu_${n}" }`,
    `add element netdev g open { mac${n} }`,
    `add element inet p paid { mac${n} . 10.0.0.${n} }`,
    '',
  ].join('\n');

test('openings of one run: each set one command, after every named object, in the order its elements came', () => {
  assert.is(
    coalesceElements(opening(1) + opening(2) + opening(3)),
    [
      'add quota netdev q q_1 { over 1000 bytes }',
      'add counter netdev c cu_1',
      'add quota netdev q q_2 { over 1000 bytes }',
      'add counter netdev c cu_2',
      'add quota netdev q q_3 { over 1000 bytes }',
      'add counter netdev c cu_3',
      'add element netdev q up { mac1 : "q_1", mac2 : "q_2", mac3 : "q_3" }',
      'add element netdev c cup { mac1 : "cu_1", mac2 : "cu_2", mac3 : "cu_3" }',
      'add element netdev g open { mac1, mac2, mac3 }',
      'add element inet p paid { mac1 . 10.0.0.1, mac2 . 10.0.0.2, mac3 . 10.0.0.3 }',
      '',
    ].join('\n'),
  );
});

test('a delete, a flush or any other command: the elements held before it are added before it', () => {
  const close = [
    'add element inet p paid { mac9 . 10.0.0.9 }',
    'delete element inet p paid { mac9 . 10.0.0.9 }',
    'add element netdev g open { mac9 }',
    'flush set netdev g open',
    'add element netdev g open { mac8 }',
    'delete quota netdev q q_9',
    'add element netdev g open { mac7 }',
    '',
  ].join('\n');
  // Nothing to join across those lines: the script as it came.
  assert.is(coalesceElements(close), close);
  assert.is(
    coalesceElements(`${opening(1)}delete element netdev g open { mac1 }\n${opening(2)}`),
    [
      'add quota netdev q q_1 { over 1000 bytes }',
      'add counter netdev c cu_1',
      'add element netdev q up { mac1 : "q_1" }',
      'add element netdev c cup { mac1 : "cu_1" }',
      'add element netdev g open { mac1 }',
      'add element inet p paid { mac1 . 10.0.0.1 }',
      'delete element netdev g open { mac1 }',
      ...opening(2)
        .split('\n')
        .filter((l) => l.startsWith('add quota') || l.startsWith('add counter')),
      ...opening(2)
        .split('\n')
        .filter((l) => l.startsWith('add element')),
      '',
    ].join('\n'),
  );
});

test('elements with their own options, several in one line, and a script without any', () => {
  assert.is(
    coalesceElements(
      'add element netdev g closing { mac1 timeout 30s }\n' +
        'add element inet p paid { mac1 . 10.0.0.1, mac1 . 10.0.0.2 }\n' +
        'add element netdev g closing { mac2 timeout 30s }\n',
    ),
    'add element netdev g closing { mac1 timeout 30s, mac2 timeout 30s }\n' +
      'add element inet p paid { mac1 . 10.0.0.1, mac1 . 10.0.0.2 }\n',
  );
  assert.is(coalesceElements(''), '');
  assert.is(
    coalesceElements('flush chain inet t c\nadd rule inet t c accept\n'),
    'flush chain inet t c\nadd rule inet t c accept\n',
  );
});

test.run();

// tier: fast
// Importing the walled garden's rule (portal/walled-garden-refusal.ts) does no work: most of the processes and test
// files that import it check no address, and node:net's first isIP compiles its IPv6 pattern (~5 ms of CPU).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';

test('the module checks no address until asked; then it refuses and admits as before', async () => {
  const isIP = net.isIP;
  let calls = 0;
  net.isIP = (input: string) => {
    calls++;
    return isIP(input);
  };
  syncBuiltinESMExports();
  try {
    const { gardenRefusal } = await import('../../src/portal/walled-garden-refusal.ts');
    assert.is(calls, 0, 'isIP calls at import');
    const own = { addresses: ['192.0.2.1'], subnets: [] };
    assert.is(gardenRefusal('10.1.2.3', own), 'private (RFC 1918)');
    assert.is(gardenRefusal('fe80::1', own), 'link-local');
    assert.is(gardenRefusal('192.0.2.1', own), "the router's own address");
    assert.is(gardenRefusal('203.0.113.7', own), undefined);
    assert.ok(calls > 0);
  } finally {
    net.isIP = isIP;
    syncBuiltinESMExports();
  }
});

test.run();

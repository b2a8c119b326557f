/**
 * The process test/payments/upto-chain.test.ts kills: opens the upto table in SLUICE_UPTO_DIR, settles the open
 * authorization SLUICE_UPTO_REF for SLUICE_UPTO_USED, and SIGKILLs itself the moment /settle is about to leave
 * (the settle intent is on flash, the facilitator never heard of it): the kill -9 between intent and settle.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { UptoStore } from '../../src/x402/index.ts';
import type { UptoConfig } from '../../src/config/index.ts';
import { UptoMethod } from '../../src/payments/upto/x402-upto.ts';

const config = JSON.parse(process.env.SLUICE_UPTO_CONFIG ?? '{}') as UptoConfig;
const store = await UptoStore.open(process.env.SLUICE_UPTO_DIR ?? '');
// Node publishes each client request as it is made, before it connects: the kill comes before a byte leaves.
subscribe('http.client.request.start', (message) => {
  if ((message as { request: ClientRequest }).request.path.endsWith('/settle')) process.kill(process.pid, 'SIGKILL');
});
const method = new UptoMethod(config, { store });
await method.settle(process.env.SLUICE_UPTO_REF ?? '', BigInt(process.env.SLUICE_UPTO_USED ?? '0'));
process.exit(3); // not reached: the settle never gets past the kill

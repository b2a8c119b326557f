/**
 * The process test/payments/upto-chain.test.ts kills: opens the upto table in SLUICE_UPTO_DIR, settles the open
 * authorization SLUICE_UPTO_REF for SLUICE_UPTO_USED, and SIGKILLs itself the moment /settle is about to leave
 * (the settle intent is on flash, the facilitator never heard of it): the kill -9 between intent and settle.
 */
import { UptoStore } from '../../src/x402/index.ts';
import type { UptoConfig } from '../../src/config/index.ts';
import { UptoMethod } from '../../src/payments/upto/x402-upto.ts';

const config = JSON.parse(process.env.SLUICE_UPTO_CONFIG ?? '{}') as UptoConfig;
const store = await UptoStore.open(process.env.SLUICE_UPTO_DIR ?? '');
const killingFetch: typeof fetch = (input, init) => {
  if (String(input).endsWith('/settle')) process.kill(process.pid, 'SIGKILL');
  return fetch(input, init);
};
const method = new UptoMethod(config, { store, fetch: killingFetch });
await method.settle(process.env.SLUICE_UPTO_REF ?? '', BigInt(process.env.SLUICE_UPTO_USED ?? '0'));
process.exit(3); // not reached: the settle never gets past the kill

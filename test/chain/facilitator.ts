/**
 * A real x402 facilitator for the tests: @x402/core's x402Facilitator with @x402/evm's exact scheme (v2 and v1),
 * settling on the test chain with its own funded key, served over the standard HTTP API (POST /verify, POST /settle,
 * GET /supported). Faults are injected at the HTTP edge, never inside the verification: `down` (connection refused),
 * `settleFails` (answers success:false without touching the chain), `settleDelayMs` (settles on chain, then holds
 * the answer: a client timeout with the money moved), `settleStalls` (takes the settle and never answers nor
 * settles, until the client gives up: a client timeout with no money moved), `beforeSettle` (a test's step between the
 * settle request and the settle: e.g. the authorization submitted by someone else), and `dialect: 'x402-rs'` (refusals
 * as HTTP 400 with x402-rs's reason names). Options add @x402/evm's batch-settlement and upto facilitator schemes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { x402Facilitator } from '@x402/core/facilitator';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { registerExactEvmScheme } from '@x402/evm/exact/facilitator';
import { BatchSettlementEvmScheme } from '@x402/evm/batch-settlement/facilitator';
import { UptoEvmScheme } from '@x402/evm/upto/facilitator';
import { createWalletClient, http, publicActions } from 'viem';
import { generatePrivateKey, nonceManager, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import type { TestChain } from './index.ts';
import { receiptOf } from './receipt.ts';

export interface FacilitatorFaults {
  settleFails?: boolean;
  settleDelayMs?: number;
  settleStalls?: boolean;
  verifyDelayMs?: number;
  dialect?: 'spec' | 'x402-rs';
  /** Runs once the settle request arrived, before the facilitator settles (a test moves the chain meanwhile). */
  beforeSettle?: ((paymentPayload: Record<string, unknown>) => Promise<void>) | undefined;
}

export interface TestFacilitator {
  url: string;
  account: PrivateKeyAccount;
  /**
   * Sends from the facilitator's key in turn with its own settles. viem's nonce manager hands a nonce out before the
   * gas estimate; a settle whose estimate reverts (a repeated settle of a used authorization) resets it, and a
   * transaction given the next nonce meanwhile waits forever behind a nonce nobody sends.
   */
  inTurn<T>(send: () => Promise<T>): Promise<T>;
  faults: FacilitatorFaults;
  calls: { verify: number; settle: number; supported: number };
  /** Stops listening (connection refused) until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** x402-rs names for the spec's reasons (its 400 answers carry these). */
const X402RS_REASONS: Record<string, string> = {
  invalid_exact_evm_payload_signature: 'invalid_signature',
  invalid_exact_evm_payload_authorization_valid_before: 'invalid_payment_expired',
  invalid_exact_evm_payload_authorization_valid_after: 'invalid_payment_early',
  invalid_exact_evm_payload_recipient_mismatch: 'invalid_payment_recipient',
};

export interface FacilitatorOptions {
  networks?: string[];
  faults?: FacilitatorFaults;
  /**
   * Also serve `batch-settlement` (@x402/evm's own facilitator scheme; the contracts must be in place: batch.ts).
   * `authorizer`: the key it signs claims and refunds with for servers that delegate (advertised as
   * receiverAuthorizer in /supported); omitted, servers must sign their own.
   */
  batchSettlement?: { authorizer?: PrivateKeyAccount };
  /** Also serve `upto` (@x402/evm's own facilitator scheme, Permit2; the contracts must be in place: upto.ts). */
  upto?: boolean;
}

export async function startFacilitator(chain: TestChain, options: FacilitatorOptions = {}): Promise<TestFacilitator> {
  // One signer settles concurrent payments: viem's nonce manager hands out transaction nonces without collisions.
  const account = privateKeyToAccount(generatePrivateKey(), { nonceManager });
  await chain.fund(account.address);
  const client = createWalletClient({
    account,
    chain: chain.chain,
    transport: http(chain.rpcUrl, { retryCount: 0 }),
    pollingInterval: 50,
  }).extend(publicActions);
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(send: () => Promise<T>): Promise<T> => {
    const mine = turn.then(send, send);
    turn = mine.catch(() => undefined);
    return mine;
  };
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (args: never) => client.readContract(args),
    verifyTypedData: (args: never) => client.verifyTypedData(args),
    writeContract: (args: never) => inTurn(() => client.writeContract(args)),
    sendTransaction: (args: never) => inTurn(() => client.sendTransaction(args)),
    waitForTransactionReceipt: (args: never) => timedReceiptWait(args, () => receiptOf(client, args)),
    getCode: (args: { address: `0x${string}` }) => client.getCode(args),
  } as never);
  const facilitator = new x402Facilitator();
  registerExactEvmScheme(facilitator, { signer, networks: (options.networks ?? [`eip155:${chain.chainId}`]) as never });
  if (options.batchSettlement) {
    facilitator.register(
      (options.networks ?? [`eip155:${chain.chainId}`]) as never,
      new BatchSettlementEvmScheme(signer as never, options.batchSettlement.authorizer as never),
    );
  }
  if (options.upto)
    facilitator.register(
      (options.networks ?? [`eip155:${chain.chainId}`]) as never,
      new UptoEvmScheme(signer as never),
    );

  const faults: FacilitatorFaults = options.faults ?? {};
  const calls = { verify: 0, settle: 0, supported: 0 };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > 1 << 20) throw new Error('body too large');
    }
    return JSON.parse(body) as Record<string, unknown>;
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    res.writeHead(status, { 'content-type': 'application/json' }).end(text);
  }

  function refusal(
    res: ServerResponse,
    kind: 'verify' | 'settle',
    reason: string,
    message: string | undefined,
    extra: Record<string, unknown>,
  ): void {
    if (faults.dialect === 'x402-rs') {
      const rs = X402RS_REASONS[reason] ?? reason;
      send(
        res,
        400,
        kind === 'verify'
          ? { isValid: false, invalidReason: rs, invalidReasonDetails: message ?? rs, ...extra }
          : { success: false, errorReason: rs, errorMessage: message ?? rs, ...extra },
      );
      return;
    }
    send(
      res,
      200,
      kind === 'verify'
        ? { isValid: false, invalidReason: reason, invalidMessage: message, ...extra }
        : { success: false, errorReason: reason, errorMessage: message, transaction: '', ...extra },
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/supported') {
      calls.supported++;
      return send(res, 200, facilitator.getSupported());
    }
    if (req.method !== 'POST' || (req.url !== '/verify' && req.url !== '/settle'))
      return send(res, 404, { error: 'not found' });
    let body: Record<string, unknown>;
    try {
      body = await readJson(req);
    } catch {
      return send(res, 400, { error: 'invalid request' });
    }
    const payload = body.paymentPayload as never;
    const requirements = body.paymentRequirements as never;
    if (!payload || !requirements) return send(res, 400, { error: 'invalid request' });
    if (req.url === '/verify') {
      calls.verify++;
      if (faults.verifyDelayMs) await sleep(faults.verifyDelayMs);
      const r = await facilitator.verify(payload, requirements);
      if (!r.isValid) return refusal(res, 'verify', r.invalidReason ?? 'invalid', r.invalidMessage, { payer: r.payer });
      return send(res, 200, r);
    }
    calls.settle++;
    if (faults.settleFails)
      return refusal(res, 'settle', 'unexpected_settle_error', 'settlement failed (injected)', {});
    if (faults.settleStalls) {
      await new Promise<void>((resolve) => res.once('close', () => resolve()));
      return;
    }
    await faults.beforeSettle?.(body.paymentPayload as Record<string, unknown>);
    const r = await facilitator.settle(payload, requirements);
    if (faults.settleDelayMs) await sleep(faults.settleDelayMs);
    if (!r.success)
      return refusal(res, 'settle', r.errorReason ?? 'settle_failed', r.errorMessage, {
        transaction: r.transaction,
        network: r.network,
      });
    return send(res, 200, r);
  }

  let server: Server | undefined;
  let port = 0;
  const up = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => {
        handle(req, res).catch((err: unknown) => {
          if (!res.headersSent) send(res, 500, { error: String((err as Error).message ?? err) });
        });
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
      server = undefined;
    });
  await up();
  return { url: `http://127.0.0.1:${port}`, account, inTurn, faults, calls, up, down, stop: down };
}

/**
 * A receipt wait this long is news (anvil mines at once): shown as a `# ` line, which test/run.mjs prints for a passing
 * file too.
 */
const SLOW_RECEIPT_MS = 5000;

/**
 * The facilitator's receipt waits, timed: a CI file once passed after ~180 s, viem's default receipt timeout, with no
 * line saying where.
 */
async function timedReceiptWait<T>(args: unknown, wait: () => Promise<T>): Promise<T> {
  const began = Date.now();
  const hash = (args as { hash?: string }).hash ?? '?';
  try {
    return await wait();
  } finally {
    const ms = Date.now() - began;
    if (ms >= SLOW_RECEIPT_MS) console.log(`# [test chain] the facilitator waited ${ms} ms for the receipt of ${hash}`);
  }
}

/**
 * A reference escrow facilitator for the tests: the x402r sessions plan's HTTP API over SessionEscrow on anvil.
 * Strict like a real one: unknown networks, malformed bodies and reverts are refusals (HTTP 400; 404 for an unknown
 * session), answered in the spec dialect ({success:false, error}) or x402-rs's ({reason, errorMessage}).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getAddress, type Address, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { compileSolidity, type Artifact, type TestChain } from '../chain/index.ts';
import { readFileSync } from 'node:fs';
import { sessionIdOf, termsNonce } from '../../src/escrow/receipt.ts';

export function compileEscrow(): Artifact {
  const a = compileSolidity({
    'SessionEscrow.sol': readFileSync(new URL('./SessionEscrow.sol', import.meta.url), 'utf8'),
  })['SessionEscrow'];
  if (!a) throw new Error('SessionEscrow missing from the compiler output');
  return a;
}

export interface EscrowFacilitator {
  url: string;
  network: string;
  /**
   * dropCreateReply: that many /session/create calls act (the session is created on chain) and then drop the
   * connection without an answer; downAfterDrop: the facilitator also goes down right after dropping it;
   * hangCreateReply: that many /session/create calls act and then never answer (the connection stays open: a caller
   * killed while it waits); holdClose: that many /session/close calls are taken and neither acted on nor answered
   * (a facilitator that holds the request: the caller's stop must not wait for it).
   */
  faults: {
    dialect: 'spec' | 'x402-rs';
    http500: number;
    dropCreateReply: number;
    downAfterDrop: boolean;
    hangCreateReply: number;
    holdClose: number;
  };
  calls: string[];
  gas: Record<string, bigint[]>;
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly http = 400,
  ) {
    super(message);
  }
}

function reasonOf(err: unknown): Refusal {
  const m = String((err as Error).message ?? err);
  const table: [RegExp, string][] = [
    [/invalid signature/, 'invalid_signature'],
    [/is expired/, 'authorization_expired'],
    [/not yet valid/, 'authorization_not_yet_valid'],
    [/deposit below/, 'insufficient_deposit'],
    [/session exists|used or canceled/, 'session_exists'],
    [/not signed by the buyer/, 'invalid_receipt_signer'],
    [/above maxUnits/, 'units_above_max'],
    [/not active/, 'session_not_active'],
    [/transfer amount exceeds balance/, 'insufficient_funds'],
  ];
  for (const [re, reason] of table) if (re.test(m)) return new Refusal(reason, m.split('\n')[0]!.slice(0, 200));
  return new Refusal('transaction_failed', m.split('\n')[0]!.slice(0, 200));
}

export async function startEscrowFacilitator(
  chain: TestChain,
  opts: { escrow: Address; artifact: Artifact; operator: PrivateKeyAccount; token: Address },
): Promise<EscrowFacilitator> {
  const network = `eip155:${chain.chainId}`;
  const { escrow, artifact, operator } = opts;
  const faults: EscrowFacilitator['faults'] = {
    dialect: 'spec',
    http500: 0,
    dropCreateReply: 0,
    downAfterDrop: false,
    hangCreateReply: 0,
    holdClose: 0,
  };
  const calls: string[] = [];
  const gas: Record<string, bigint[]> = {};

  async function send(functionName: string, args: readonly unknown[]): Promise<Hex> {
    let hash: Hex;
    try {
      hash = await chain
        .wallet(operator)
        .writeContract({ address: escrow, abi: artifact.abi, functionName, args: args as never });
    } catch (err) {
      throw reasonOf(err);
    }
    const r = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (r.status !== 'success') throw new Refusal('transaction_failed', `${functionName} reverted`);
    (gas[functionName] ??= []).push(r.gasUsed);
    return hash;
  }
  async function read(id: Hex) {
    const s = (await chain.publicClient.readContract({
      address: escrow,
      abi: artifact.abi,
      functionName: 'sessions',
      args: [id],
    })) as readonly unknown[];
    return {
      token: s[0] as Address,
      expiresAt: s[1] as bigint,
      status: Number(s[2]),
      buyer: s[3] as Address,
      maxUnits: s[4] as bigint,
      seller: s[5] as Address,
      units: s[6] as bigint,
      price: s[7] as bigint,
      deposit: s[8] as bigint,
    };
  }
  const need = (cond: unknown, msg: string): void => {
    if (!cond) throw new Refusal('invalid_request', msg);
  };
  const big = (v: unknown, f: string): bigint => {
    need(typeof v === 'string' && /^[0-9]{1,78}$/.test(v), `${f} must be a decimal string`);
    return BigInt(v as string);
  };
  const hex32 = (v: unknown, f: string): Hex => {
    need(typeof v === 'string' && /^0x[0-9a-fA-F]{64}$/.test(v), `${f} must be 32 bytes hex`);
    return (v as string).toLowerCase() as Hex;
  };
  const stats = { completed: 0 };
  const known = new Set<Hex>();

  async function handle(method: string, path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (method === 'GET' && path === '/sessions/stats') {
      let active = 0,
        expired = 0;
      const now = await chain.now();
      for (const id of known) {
        const s = await read(id);
        if (s.status === 1) {
          if (s.expiresAt <= now) expired++;
          else active++;
        }
      }
      return { total: known.size, active, completed: stats.completed, expired };
    }
    const get = /^\/session\/([^/]+)\/(0x[0-9a-fA-F]{64})$/.exec(path);
    if (method === 'GET' && get) {
      need(decodeURIComponent(get[1]!) === network, 'unsupported network');
      const id = get[2]!.toLowerCase() as Hex;
      const s = await read(id);
      if (s.status === 0) throw new Refusal('session_not_found', 'no such session', 404);
      const consumed = s.units * s.price;
      return {
        success: true,
        session: {
          sessionId: id,
          buyer: s.buyer,
          seller: s.seller,
          totalDeposit: String(s.deposit),
          consumedAmount: String(consumed),
          remainingAmount: String(s.status === 1 ? s.deposit - consumed : 0n),
          unitsUsed: String(s.units),
          remainingUnits: String(s.maxUnits - s.units),
          expiresAt: String(s.expiresAt),
          status: s.status === 1 ? 'active' : 'completed',
        },
      };
    }
    if (method !== 'POST') throw new Refusal('not_found', 'no such route', 404);
    need(
      body.network === network ||
        (body.paymentPayload as Record<string, unknown> | undefined)?.network === network ||
        (body.paymentRequirements as Record<string, unknown> | undefined)?.network === network,
      'unsupported network',
    );
    if (path === '/session/create') {
      const p = body.paymentPayload as Record<string, unknown>;
      const req = body.paymentRequirements as Record<string, unknown>;
      need(p && req, 'paymentPayload and paymentRequirements required');
      // x402 v2 carries {payload: {authorization, signature}}; the plan's flat form has them at the top.
      const inner = (typeof p.payload === 'object' && p.payload !== null ? p.payload : p) as Record<string, unknown>;
      const a = inner.authorization as Record<string, unknown>;
      const sess = (p.extensions as Record<string, unknown> | undefined)?.session as
        Record<string, unknown> | undefined;
      if (!a || !sess || sess.type !== 'prepaid')
        throw new Refusal('invalid_request', 'authorization and extensions.session (prepaid) required');
      need(
        typeof req.asset === 'string' && getAddress(req.asset as string) === getAddress(opts.token),
        'unsupported asset',
      );
      need(getAddress(a.to as string) === getAddress(escrow), 'authorization does not pay the escrow');
      const terms = {
        seller: getAddress(sess.seller as string),
        pricePerUnit: big(sess.pricePerUnit, 'pricePerUnit'),
        maxUnits: big(sess.maxUnits, 'maxUnits'),
        duration: big(sess.duration, 'duration'),
        salt: hex32(sess.salt, 'salt'),
      };
      need(
        termsNonce(escrow, terms) === (a.nonce as string).toLowerCase(),
        'authorization nonce is not the terms nonce',
      );
      const buyer = getAddress(a.from as string);
      const tx = await send('createSession', [
        opts.token,
        buyer,
        big(a.value, 'value'),
        big(a.validAfter, 'validAfter'),
        big(a.validBefore, 'validBefore'),
        terms,
        inner.signature,
      ]);
      const sessionId = sessionIdOf(opts.token, buyer, a.nonce as Hex);
      known.add(sessionId);
      return { success: true, sessionId, transaction: tx };
    }
    if (path === '/session/consume') {
      const id = hex32(body.sessionId, 'sessionId');
      const units = big(body.units, 'units');
      const tx = await send('consume', [id, units, big(body.nonce ?? '0', 'nonce'), body.buyerSignature]);
      const s = await read(id);
      return {
        success: true,
        transaction: tx,
        unitsConsumed: String(units),
        totalConsumed: String(s.units),
        remaining: String(s.maxUnits - s.units),
      };
    }
    if (path === '/session/close') {
      const id = hex32(body.sessionId, 'sessionId');
      const withReceipt = typeof body.buyerSignature === 'string';
      const tx = await send('close', [
        id,
        withReceipt ? big(body.units, 'units') : 0n,
        withReceipt ? big(body.nonce ?? '0', 'nonce') : 0n,
        withReceipt ? body.buyerSignature : '0x',
      ]);
      const s = await read(id);
      stats.completed++;
      const sellerAmount = s.units * s.price;
      return {
        success: true,
        transaction: tx,
        sellerAmount: String(sellerAmount),
        buyerRefund: String(s.deposit - sellerAmount),
      };
    }
    throw new Refusal('not_found', 'no such route', 404);
  }

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        data += c;
        if (data.length > 65_536) reject(new Refusal('invalid_request', 'body too large'));
      });
      req.on('end', () => resolve(data));
      req.on('error', reject);
    });

  let server: Server | undefined;
  let port = 0;
  // One request at a time: the operator account's nonces must not interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((req, res) => {
        queue = queue.then(async () => {
          const path = (req.url ?? '/').split('?')[0]!;
          calls.push(`${req.method} ${path}`);
          if (path === '/session/close' && faults.holdClose > 0) {
            faults.holdClose--;
            return;
          }
          let status = 200;
          let out: Record<string, unknown>;
          try {
            const raw = await readBody(req);
            if (faults.http500 > 0) {
              faults.http500--;
              throw new Refusal('internal', 'injected failure', 500);
            }
            let body: Record<string, unknown> = {};
            if (raw) {
              try {
                body = JSON.parse(raw) as Record<string, unknown>;
              } catch {
                throw new Refusal('invalid_request', 'body is not JSON');
              }
            }
            out = await handle(req.method ?? 'GET', path, body);
          } catch (err) {
            const r = err instanceof Refusal ? err : reasonOf(err);
            status = r.http;
            out =
              faults.dialect === 'spec'
                ? { success: false, error: r.reason, errorMessage: r.message }
                : { reason: r.reason, errorMessage: r.message };
          }
          if (path === '/session/create' && status === 200 && faults.dropCreateReply > 0) {
            faults.dropCreateReply--;
            req.socket.destroy();
            if (faults.downAfterDrop) {
              faults.downAfterDrop = false;
              await close();
            }
            return;
          }
          if (path === '/session/create' && status === 200 && faults.hangCreateReply > 0) {
            faults.hangCreateReply--;
            return;
          }
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        });
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
      server = undefined;
    });
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    network,
    faults,
    calls,
    gas,
    down: close,
    up: listen,
    stop: close,
  };
}

/**
 * A lab Cashu mint on 127.0.0.1, for tests of the Cashu payment method and the TollGate door. No real mint
 * (Nutshell, cdk-mintd) can run here, so this one is built on @cashu/cashu-ts's mint-side primitives and checked
 * against the cashubtc/nuts test vectors (cashu-mint.test.ts). It verifies everything a real mint verifies; it is not a
 * stub that answers yes. The books are in cashu-mint-ledger.ts; docs/testing.md says what it implements.
 *
 *   const mint = await startCashuMint({ inputFeePpk: 100 });
 *                                                        // also idVersion 0|1, finalExpiry, autoPay, feeReserve, now
 *   const token = await mint.fundToken(21);              // cashuB…, as a wallet mints it (quote → paid → mint)
 *   mint.url, mint.unit, mint.keysets()                  // [{ id, unit, active, inputFeePpk, finalExpiry }]
 *   await mint.fundToken(8, { version: 3 })             // cashuA…; { keyset } on an inactive (rotated) keyset too
 *   await mint.fundProofs(8); await mint.labWallet()     // the proofs themselves; the helpers' cashu-ts Wallet
 *   mint.issuedProofs(8, { keyset? })                    // ecash in hand, signed from the keys (no quote, no blinding)
 *   mint.issuedToken(8, { version?, keyset? })           // the same as a token, without DLEQs
 *   mint.lockedToken(8, { pubkey? })                     // NUT-11 P2PK-locked: the mint refuses it without the witness
 *   mint.forgedToken(8)                                  // random secret, random C: UNSPENT at checkstate,
 *                                                        // refused at swap
 *   mint.unknownKeysetToken(8)                           // properly signed by a keyset the mint does not list
 *                                                        // (V3: full id)
 *   mint.rotate({ inputFeePpk?, finalExpiry? })          // new active keyset; the unit's others inactive (still
 *                                                        // inputs). A v2 id covers final_expiry, so a keyset gets it
 *                                                        // when made: startCashuMint({ finalExpiry }) then rotate() =
 *                                                        // "being retired"
 *   mint.spent(), mint.tokenYs(token), mint.markPending(ys), mint.clearPending(ys?)   // NUT-07 states, a PENDING hook
 *   mint.setAutoPay(false); mint.payMintQuote(id)        // NUT-04: quotes paid on creation (default) or on command
 *   startCashuMint({ quoteLocks: false })                 // NUT-20 off (default on: a quote asked with a pubkey is
 *                                                        // minted only with its signature); quoteSigFormats ['legacy']
 *   await mint.claimQuote(id); mint.mintQuote(id)        // someone else mints a paid quote (refused if locked)
 *   mint.meltOutcome('paid' | 'failed' | 'pending', { fee? }); mint.settleMelt(id, 'paid' | 'failed')
 *   mint.setFeeReserve(n | (amount) => n); mint.invoice(sats)   // NUT-05; a fake bolt11 the mint's melt quote reads
 *   mint.setCachedResponses(false)                       // NUT-19 off: a replayed swap gets 11001, recovery is restore
 *   const f = mint.fault('POST /v1/swap', 'commit-then-drop', { times: 1 }); f.hits; await f.arrived; await f.clear()
 *   await mint.clearFaults()
 *   mint.calls('POST /v1/swap')                          // requests a client made (helpers' own requests not counted)
 *   await mint.restart()                                 // same port, keys, spent set, signatures, quotes
 *   await mint.stop()
 *
 * Fault kinds (`route` is `METHOD /path` with `:id` for parameters, or `*`):
 *   delay { ms, when? }   wait, then serve; `when: 'after'` applies the request first and delays only the answer
 *   hold { when?, lose? } like delay until `handle.release()` (no clock: what "a slow mint" means in a test); `lose`:
 *                         then dropped unapplied
 *   429 { retryAfter? }   rate limited, nothing applied          5xx { status? }   503 (or status), nothing applied
 *   drop                  socket destroyed before anything is applied
 *   commit-then-drop      applied (spent, signed, cached), then the socket destroyed before any answer
 *   refuse                the port closed (route must be '*'): connection refused until `await handle.clear()`
 * `times` limits a fault to the next n matching requests (default: until cleared).
 */
import {
  Mint,
  Wallet,
  getDecodedToken,
  getPubKeyFromPrivKey,
  createRandomSecretKey,
  type Proof,
} from '@cashu/cashu-ts';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../helpers/net.ts';
import {
  MintError,
  MintLedger,
  fakeInvoice,
  yOf,
  type KeysetOptions,
  type LabKeyset,
  type MeltOutcome,
} from './cashu-mint-ledger.ts';
import { CACHED, ROUTES, closeServer, readBody, send } from './cashu-mint-wire.ts';
import type { QuoteSigFormat } from './cashu-mint-nut20.ts';
import {
  encodeToken,
  foreignProofs,
  forgedProofs,
  issueProofs,
  p2pkSecret,
  walletOutputs,
  walletProofs,
  type TokenVersion,
} from './cashu-mint-tokens.ts';
import { labRequest } from './cashu-request.ts';
import '../helpers/kept-connections.ts';

export { MintError, CODES, feeFor, yOf } from './cashu-mint-ledger.ts';
export type { TokenVersion } from './cashu-mint-tokens.ts';

export interface CashuMintOptions extends KeysetOptions {
  /** Serve and cache /v1/swap, /v1/mint/bolt11, /v1/melt/bolt11 replays (NUT-19). Default true, as Nutshell and cdk. */
  cachedResponses?: boolean;
  /** Mint quotes PAID as soon as they are made. Default true; false waits for payMintQuote(id). */
  autoPay?: boolean;
  /** NUT-20: quotes locked to the request's pubkey (default true, advertised in /v1/info); false: a mint without it. */
  quoteLocks?: boolean;
  /** The NUT-20 messages a signature is checked against: ['v1'] (default), ['legacy'] (an older mint), or both. */
  quoteSigFormats?: QuoteSigFormat[];
  feeReserve?: number | ((amount: number) => number);
  /** The clock keyset expiry is checked against (ms). */
  now?: () => number;
  port?: number;
}

export type FaultKind = 'delay' | 'hold' | '429' | '5xx' | 'drop' | 'commit-then-drop' | 'refuse';
export interface FaultOptions {
  times?: number;
  ms?: number;
  when?: 'before' | 'after';
  status?: number;
  retryAfter?: number;
  /** hold: once released, the request is lost (socket destroyed) without being applied, as a cut link loses it. */
  lose?: boolean;
}
export interface FaultHandle {
  readonly hits: number;
  /** Resolves when the first matching request arrives. */
  readonly arrived: Promise<void>;
  /** hold: let the held requests go on; every kind: stop matching. Resolves when done (refuse: the port open again). */
  release(): Promise<void>;
  clear(): Promise<void>;
}

export interface KeysetInfo {
  id: string;
  unit: string;
  active: boolean;
  inputFeePpk: number;
  finalExpiry: number | undefined;
}

interface Fault {
  route: string;
  kind: FaultKind;
  opts: FaultOptions;
  hits: number;
  onArrive: () => void;
  released: Promise<void>;
  release: () => void;
}

export class CashuMint {
  readonly ledger: MintLedger;
  private publicServer: Server | undefined;
  private labServer: Server | undefined;
  private labPort = 0;
  private faults: Fault[] = [];
  private readonly cache = new Map<string, unknown>();
  private readonly counts = new Map<string, number>();
  private readonly infoKey = bytesToHex(getPubKeyFromPrivKey(createRandomSecretKey()));
  private refused = false;
  /** The public listener's last close, which a reopening on the same port waits for. */
  private closing: Promise<void> = Promise.resolve();
  private wallet: { wallet: Wallet; keysets: string; port: number } | undefined;
  cachedResponses: boolean;

  private constructor(
    readonly port: number,
    readonly unit: string,
    opts: CashuMintOptions,
  ) {
    this.ledger = new MintLedger(opts.now ?? Date.now);
    this.ledger.addKeyset(opts);
    this.cachedResponses = opts.cachedResponses ?? true;
    this.ledger.autoPayMintQuotes = opts.autoPay ?? true;
    this.ledger.quoteLocks = opts.quoteLocks ?? true;
    if (opts.quoteSigFormats) this.ledger.quoteSigFormats = opts.quoteSigFormats;
    if (opts.feeReserve !== undefined) this.setFeeReserve(opts.feeReserve);
  }

  static async start(opts: CashuMintOptions = {}): Promise<CashuMint> {
    const mint = new CashuMint(opts.port ?? (await freePort()), opts.unit ?? 'sat', opts);
    await mint.listen();
    return mint;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  keysets(): KeysetInfo[] {
    return this.ledger.keysets.map(({ id, unit, active, inputFeePpk, finalExpiry }) => ({
      id,
      unit,
      active,
      inputFeePpk,
      finalExpiry,
    }));
  }

  /** The active keyset of the mint's unit (what new ecash is signed on). */
  get keysetId(): string {
    return this.ledger.active(this.unit).id;
  }

  // ---- tokens ----

  /**
   * A customer's token of `amount`, funded as a wallet funds it: a bolt11 mint quote, paid by the fake Lightning node,
   * minted on outputs split and blinded as cashu-ts's Wallet makes them, and unblinded into proofs that keep each
   * signature's DLEQ. The wallet's side is done here in variable time, without a Wallet's check of each signature's
   * DLEQ (four constant-time multiplications a proof: through a Wallet, funding was most of each Cashu file's CPU);
   * cashu-mint.test.ts's Wallet checks the DLEQs of the funded proofs it receives. `keyset`: an active one is minted
   * on; an inactive one (after rotate) is issued from its keys, as the mint did before the rotation.
   */
  async fundToken(amount: number, o: { version?: TokenVersion; keyset?: string; memo?: string } = {}): Promise<string> {
    return encodeToken(this.url, this.unit, await this.fundProofs(amount, o), o.version ?? 4, o.memo);
  }

  async fundProofs(amount: number, o: { keyset?: string } = {}): Promise<Proof[]> {
    const keyset = o.keyset === undefined ? this.ledger.active(this.unit) : this.ledger.keyset(o.keyset);
    if (!keyset.active) return this.signedHere(issueProofs(amount, keyset.id, keyset.privKeys));
    const { quote } = this.ledger.createMintQuote({ amount, unit: this.unit });
    this.ledger.payMintQuote(quote);
    const outputs = walletOutputs(amount, keyset.id);
    const { signatures } = this.ledger.mint({ quote, outputs: outputs.map((out) => out.wire) });
    return this.signedHere(walletProofs(signatures, outputs, keyset.privKeys));
  }

  /**
   * Ecash in hand: proofs of `amount` signed straight from the keys of the unit's active keyset (or of `keyset`), C =
   * k·hash_to_curve(secret), with no quote and no blinding, signing and unblinding round (a third of fundProofs's
   * work): for a test whose subject is what is done with ecash already held, not how it was minted. The mint knows
   * them for its own at a swap (signedHere) and checks their keyset, amount, spent state and spending conditions as
   * any proof's.
   */
  issuedProofs(amount: number, o: { keyset?: string } = {}): Proof[] {
    const keyset = o.keyset === undefined ? this.ledger.active(this.unit) : this.ledger.keyset(o.keyset);
    return this.signedHere(issueProofs(amount, keyset.id, keyset.privKeys));
  }

  /**
   * Proofs made here from the mint's own keys: their C is k·hash_to_curve(secret) by their making, so the mint's check
   * at a swap finds them as proofs it checked before and does not multiply again (the forged, altered and foreign
   * proofs of the tests are made elsewhere and are multiplied and refused as any).
   */
  private signedHere(proofs: Proof[]): Proof[] {
    this.ledger.signedHere(proofs);
    return proofs;
  }

  /**
   * issuedProofs as a customer's token, carrying no DLEQs (NUT-12 leaves them optional in a token, and a wallet may
   * strip them): for a test whose subject is what is done with a token, not how it was minted (fundToken's
   * quote, blinding, signing with a DLEQ and unblinding are three times the work). A receiving Wallet checks only the
   * swap's new signatures; the mint checks each proof as issuedProofs says.
   */
  issuedToken(amount: number, o: { version?: TokenVersion; keyset?: string } = {}): string {
    return encodeToken(this.url, this.unit, this.issuedProofs(amount, o), o.version ?? 4);
  }

  /**
   * A wallet on the helpers' own listener: faults and `calls` are for the code under test, not for funding. Kept while
   * the keysets stay as they are (loading one costs a few hundred ms on a busy machine).
   */
  async labWallet(): Promise<Wallet> {
    const keysets = this.ledger.keysets.map((k) => `${k.id}:${k.active}`).join();
    if (this.wallet?.keysets !== keysets || this.wallet.port !== this.labPort) {
      const wallet = new Wallet(new Mint(`http://127.0.0.1:${this.labPort}`, { customRequest: labRequest }), {
        unit: this.unit,
      });
      await wallet.loadMint();
      this.wallet = { wallet, keysets, port: this.labPort };
    }
    return this.wallet.wallet;
  }

  /** Locked to `pubkey` (default: a fresh key nobody keeps) with NUT-11 P2PK secrets. */
  lockedToken(amount: number, o: { pubkey?: string; version?: TokenVersion } = {}): string {
    const k = this.ledger.active(this.unit);
    const pubkey = o.pubkey ?? bytesToHex(getPubKeyFromPrivKey(createRandomSecretKey()));
    const proofs = this.signedHere(issueProofs(amount, k.id, k.privKeys, p2pkSecret(pubkey)));
    return encodeToken(this.url, this.unit, proofs, o.version ?? 4);
  }

  forgedToken(amount: number, o: { version?: TokenVersion } = {}): string {
    return encodeToken(this.url, this.unit, forgedProofs(amount, this.keysetId), o.version ?? 4);
  }

  /**
   * V4 carries only a short id, which no wallet can resolve against this mint's keysets; V3 (default) keeps it whole.
   */
  unknownKeysetToken(amount: number, o: { version?: TokenVersion } = {}): string {
    return encodeToken(this.url, this.unit, foreignProofs(amount, this.unit).proofs, o.version ?? 3);
  }

  /** A fake bolt11 invoice for `amount` of the unit, for melt quotes (what a Lightning address would hand out). */
  invoice(amount: number): string {
    return fakeInvoice(this.unit === 'msat' ? amount : amount * 1000);
  }

  // ---- books ----

  rotate(o: Omit<KeysetOptions, 'unit'> = {}): KeysetInfo {
    const k: LabKeyset = this.ledger.rotate({ ...o, unit: this.unit });
    return { id: k.id, unit: k.unit, active: k.active, inputFeePpk: k.inputFeePpk, finalExpiry: k.finalExpiry };
  }

  spent(): string[] {
    return [...this.ledger.spent.keys()];
  }

  /** The Ys (hash_to_curve of each secret) of a token's proofs: what checkstate and the spent set are keyed by. */
  tokenYs(token: string): string[] {
    return getDecodedToken(
      token,
      this.ledger.keysets.map((k) => k.id),
    ).proofs.map((p) => yOf(p.secret));
  }

  markPending(ys: readonly string[]): void {
    for (const y of ys) this.ledger.pending.add(y);
  }

  clearPending(ys?: readonly string[]): void {
    for (const y of ys ?? [...this.ledger.pending]) this.ledger.pending.delete(y);
  }

  setAutoPay(on: boolean): void {
    this.ledger.autoPayMintQuotes = on;
  }

  payMintQuote(id: string): void {
    this.ledger.payMintQuote(id);
  }

  /**
   * Someone else mints a paid quote whose id they learned (a log, the customer himself): a wallet of their own, fresh
   * outputs, no quote key. A quote locked to a key (NUT-20) is refused them (MintOperationError 20008).
   */
  async claimQuote(id: string): Promise<Proof[]> {
    const q = this.ledger.mintQuote(id);
    return (await this.labWallet()).mintProofsBolt11(q.amount, id);
  }

  /** A mint quote as the books hold it (its state, and the pubkey it is locked to). */
  mintQuote(id: string): { state: string; pubkey: string | null; amount: number } {
    const { state, pubkey, amount } = this.ledger.mintQuote(id);
    return { state, pubkey, amount };
  }

  meltOutcome(outcome: MeltOutcome, o: { fee?: number } = {}): void {
    this.ledger.meltNext = { outcome, fee: o.fee ?? 0 };
  }

  settleMelt(quote: string, outcome: 'paid' | 'failed', o: { fee?: number } = {}): void {
    this.ledger.settleMelt(quote, outcome, o.fee);
  }

  setFeeReserve(reserve: number | ((amount: number) => number)): void {
    this.ledger.feeReserve = typeof reserve === 'number' ? () => reserve : reserve;
  }

  setCachedResponses(on: boolean): void {
    this.cachedResponses = on;
  }

  calls(route: string): number {
    return this.counts.get(route) ?? 0;
  }

  // ---- faults ----

  fault(route: string, kind: FaultKind, opts: FaultOptions = {}): FaultHandle {
    if (!route.includes(' ') && route !== '*') throw new Error(`route is 'METHOD /path' or '*', got '${route}'`);
    let onArrive = (): void => {};
    const arrived = new Promise<void>((resolve) => {
      onArrive = resolve;
    });
    let release = (): void => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const f: Fault = { route, kind, opts, hits: 0, onArrive, released, release };
    const clear = async (): Promise<void> => {
      this.faults = this.faults.filter((x) => x !== f);
      f.release();
      if (kind === 'refuse' && this.refused) {
        this.refused = false;
        await this.openPublic();
      }
    };
    if (kind === 'refuse') {
      if (route !== '*') throw new Error("'refuse' closes the port for every route: pass '*'");
      this.refused = true;
      // server.close() stops listening at once (before fault() returns); the promise waits for open connections.
      void this.closePublic();
    } else {
      this.faults.push(f);
    }
    return {
      get hits() {
        return f.hits;
      },
      arrived,
      release: clear,
      clear,
    };
  }

  async clearFaults(): Promise<void> {
    for (const f of this.faults) f.release();
    this.faults = [];
    if (this.refused) {
      this.refused = false;
      await this.openPublic();
    }
  }

  // ---- lifecycle ----

  private async listen(): Promise<void> {
    await this.openPublic();
    this.labServer = createServer((req, res) => this.serve(req, res, false));
    await new Promise<void>((resolve, reject) => {
      this.labServer!.once('error', reject);
      this.labServer!.listen(this.labPort, '127.0.0.1', () => resolve());
    });
    this.labPort = (this.labServer.address() as { port: number }).port;
  }

  private async openPublic(): Promise<void> {
    await this.closing;
    if (this.publicServer || this.refused) return;
    const server = createServer((req, res) => this.serve(req, res, true));
    this.publicServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private closePublic(): Promise<void> {
    const server = this.publicServer;
    this.publicServer = undefined;
    this.closing = closeServer(server);
    return this.closing;
  }

  /**
   * Like a mint process restarting: connections cut, the same port, keys and books (a real mint keeps them in its DB).
   */
  async restart(o: { forgetCache?: boolean } = {}): Promise<void> {
    await this.stop();
    if (o.forgetCache) this.cache.clear();
    await this.listen();
  }

  async stop(): Promise<void> {
    for (const f of this.faults) f.release();
    await Promise.all([this.closePublic(), closeServer(this.labServer)]);
    this.labServer = undefined;
  }

  // ---- HTTP ----

  /** A bug here answers 500 with its message rather than crashing the test process. */
  private serve(req: IncomingMessage, res: ServerResponse, isPublic: boolean): void {
    this.handle(req, res, isPublic).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) send(res, 500, { detail: `lab mint bug: ${String(err)}`, code: 0 });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, isPublic: boolean): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://mint').pathname;
    const match = ROUTES.find(([m, p]) => m === req.method && p.test(path));
    const route = match?.[2] ?? `${req.method} ${path}`;
    let body: unknown;
    try {
      body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    } catch (err) {
      return send(res, 400, { detail: `request body: ${(err as Error).message}`, code: 0 });
    }
    const fault = isPublic ? this.takeFault(route) : undefined;
    if (isPublic) this.counts.set(route, this.calls(route) + 1);
    if (fault) {
      switch (fault.kind) {
        case 'drop':
          return void req.socket.destroy();
        case '429':
          return send(
            res,
            429,
            { detail: 'rate limited (lab fault)', code: 0 },
            { 'Retry-After': String(fault.opts.retryAfter ?? 1) },
          );
        case '5xx':
          return send(res, fault.opts.status ?? 503, { detail: 'lab fault', code: 0 });
        case 'delay':
        case 'hold':
          if (fault.opts.when !== 'after') await this.wait(fault);
          if (fault.opts.lose) return void req.socket.destroy();
          break;
        default:
          break;
      }
    }
    let status = 200;
    let answer: unknown;
    const cacheKey = `${route} ${JSON.stringify(body)}`;
    if (this.cachedResponses && CACHED.some((p) => path === p) && this.cache.has(cacheKey)) {
      answer = this.cache.get(cacheKey);
    } else {
      try {
        answer = this.dispatch(route, match ? path.match(match[1])?.[1] : undefined, body);
        if (CACHED.includes(path)) this.cache.set(cacheKey, answer);
      } catch (err) {
        if (!(err instanceof MintError)) throw err;
        status = err.status;
        answer = { detail: err.detail, code: err.code };
      }
    }
    if (fault?.kind === 'commit-then-drop') return void req.socket.destroy();
    if (fault && (fault.kind === 'delay' || fault.kind === 'hold') && fault.opts.when === 'after')
      await this.wait(fault);
    send(res, status, answer);
  }

  private takeFault(route: string): Fault | undefined {
    const f = this.faults.find((x) => x.route === '*' || x.route === route);
    if (!f) return undefined;
    f.hits++;
    f.onArrive();
    if (f.opts.times !== undefined && f.hits >= f.opts.times) this.faults = this.faults.filter((x) => x !== f);
    return f;
  }

  private async wait(f: Fault): Promise<void> {
    if (f.kind === 'hold') return f.released;
    await new Promise((resolve) => setTimeout(resolve, f.opts.ms ?? 0));
  }

  private dispatch(route: string, id: string | undefined, body: unknown): unknown {
    const l = this.ledger;
    switch (route) {
      case 'GET /v1/info':
        return this.info();
      case 'GET /v1/keys':
        return l.keysResponse();
      case 'GET /v1/keys/:id':
        return l.keysResponse(decodeURIComponent(id!));
      case 'GET /v1/keysets':
        return l.keysetsResponse();
      case 'POST /v1/swap':
        return l.swap(body);
      case 'POST /v1/checkstate':
        return l.checkstate(body);
      case 'POST /v1/restore':
        return l.restore(body);
      case 'POST /v1/mint/quote/bolt11':
        return l.createMintQuote(body);
      case 'GET /v1/mint/quote/bolt11/:id':
        return l.mintQuote(decodeURIComponent(id!));
      case 'POST /v1/mint/bolt11':
        return l.mint(body);
      case 'POST /v1/melt/quote/bolt11':
        return l.createMeltQuote(body);
      case 'GET /v1/melt/quote/bolt11/:id':
        return l.meltQuote(decodeURIComponent(id!));
      case 'POST /v1/melt/bolt11':
        return l.melt(body);
      default:
        throw new MintError(0, `no route ${route}`, 404);
    }
  }

  /** NUT-06. */
  private info(): unknown {
    const units = [...new Set(this.ledger.keysets.filter((k) => k.active).map((k) => k.unit))];
    const methods = units.map((unit) => ({ method: 'bolt11', unit, min_amount: 1, max_amount: 2 ** 40 }));
    return {
      name: 'sluice lab mint',
      pubkey: this.infoKey,
      version: 'sluice-lab-mint/1',
      description: 'test/peers/cashu-mint.ts',
      time: Math.floor(Date.now() / 1000),
      nuts: {
        4: { methods, disabled: false },
        5: { methods, disabled: false },
        7: { supported: true },
        8: { supported: true },
        9: { supported: true },
        10: { supported: true },
        11: { supported: true },
        12: { supported: true },
        ...(this.ledger.quoteLocks && { 20: { supported: true } }),
        ...(this.cachedResponses && {
          19: { ttl: 3600, cached_endpoints: CACHED.map((path) => ({ method: 'POST', path })) },
        }),
      },
    };
  }
}

export function startCashuMint(opts: CashuMintOptions = {}): Promise<CashuMint> {
  return CashuMint.start(opts);
}

/**
 * The lab mint's books (test/peers/cashu-mint.ts serves them over HTTP): keysets, the spent and pending sets, the
 * signatures it issued (for NUT-09 restore), mint and melt quotes with a fake Lightning backend. No I/O here: every
 * operation takes the parsed request body and returns the response body or throws a `MintError` (NUT-00's
 * `{detail, code}`, codes from cashubtc/nuts error_codes.md). Each state change is synchronous, so checking and
 * marking spent happen in one turn of the event loop: the swap is atomic without a lock.
 *
 * Built on @cashu/cashu-ts's primitives (the same a wallet uses to check a mint), but for signing and checking proofs:
 * cashu-mint-sign.ts does those in variable time. The spec vectors in test/fixtures/cashu-nuts are the independent
 * check of both (cashu-mint-vectors.test.ts).
 */
import {
  Amount,
  createNewMintKeys,
  getP2PKSigFlag,
  getSecretKind,
  hashToCurve,
  isP2PKSpendAuthorised,
  pointFromHex,
  type Proof,
} from '@cashu/cashu-ts';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { randomUUID } from 'node:crypto';
import { labMintKeys } from './cashu-mint-keys.ts';
import {
  CODES,
  MintError,
  fakeInvoice,
  invoiceAmountMsat,
  object,
  positiveInt,
  blindedPointOf,
  rememberSignedPoint,
  wireBlindedMessage,
  wireProof,
  type WireBlindedMessage,
  type WireProof,
  type WireSignature,
} from './cashu-mint-wire.ts';

import { checkQuoteSignature, quotePubkey, type QuoteSigFormat } from './cashu-mint-nut20.ts';
import { signBlinded, signY } from './cashu-mint-sign.ts';

export { CODES, MintError, fakeInvoice } from './cashu-mint-wire.ts';

/** The outputs as the mint request carried them (checkOutputs has read them: each has an amount and a B_). */
function signedOutputs(raw: unknown): Array<{ amount: number; B_: string }> {
  return (raw as Array<{ amount: number; B_: string }>).map((o) => ({ amount: o.amount, B_: o.B_ }));
}

export interface LabKeyset {
  id: string;
  unit: string;
  active: boolean;
  inputFeePpk: number;
  /** Unix seconds; part of a v2 id, so it is set when the keyset is made (cashu-ts derives it so). */
  finalExpiry: number | undefined;
  pubKeys: Record<string, string>;
  privKeys: Record<string, Uint8Array>;
}

export interface KeysetOptions {
  unit?: string;
  inputFeePpk?: number;
  finalExpiry?: number;
  /** 0: v1 ids (`00…`, 8 bytes, deprecated), 1: v2 ids (`01…`, 33 bytes). cashu-ts's `versionByte`. */
  idVersion?: 0 | 1;
  /** Keys for amounts 2^0 … 2^(orders-1). */
  orders?: number;
  seed?: Uint8Array;
}

export type State = 'UNSPENT' | 'PENDING' | 'SPENT';
export type MeltOutcome = 'paid' | 'failed' | 'pending';

interface MintQuote {
  quote: string;
  request: string;
  amount: number;
  unit: string;
  state: 'UNPAID' | 'PAID' | 'ISSUED';
  expiry: number;
  /** NUT-20: the key a mint request must be signed by (null: anyone with the id may mint it). */
  pubkey: string | null;
}
interface MeltQuote {
  quote: string;
  request: string;
  amount: number;
  unit: string;
  fee_reserve: number;
  state: 'UNPAID' | 'PENDING' | 'PAID';
  expiry: number;
  payment_preimage: string | null;
  change?: WireSignature[];
  /** While PENDING: what settling needs. */
  held?: { ys: string[]; inputTotal: number; inputFee: number; outputs: WireBlindedMessage[] };
}

const utf8 = new TextEncoder();

/** Y = hash_to_curve(secret), the key of the spent set (NUT-07). */
export function yOf(secret: string): string {
  return hashToCurve(utf8.encode(secret)).toHex(true);
}

/** NUT-02: Σ input_fee_ppk over the inputs, rounded up to whole units. */
export function feeFor(keysets: readonly Pick<LabKeyset, 'inputFeePpk'>[]): number {
  const ppk = keysets.reduce((sum, k) => sum + k.inputFeePpk, 0);
  return Math.floor((ppk + 999) / 1000);
}

/** A proof's entry in MintLedger's set of proofs known to be signed by the key of their keyset and amount. */
function verifiedKey(keyset: string, amount: number, C: string, secret: string): string {
  return `${keyset} ${amount} ${C.toLowerCase()} ${secret}`;
}

function decompose(amount: number): number[] {
  const parts: number[] = [];
  for (let bit = 0; amount > 0; bit++, amount = Math.floor(amount / 2)) if (amount % 2) parts.push(2 ** bit);
  return parts;
}

export class MintLedger {
  readonly keysets: LabKeyset[] = [];
  readonly spent = new Map<string, { witness?: unknown }>();
  readonly pending = new Set<string>();
  /** B_ → the signature issued for it (NUT-09). */
  readonly issued = new Map<string, WireSignature>();
  /**
   * Proofs whose C this mint found, or made, to be k·hash_to_curve(secret): `${keyset} ${amount} ${C} ${secret}`
   * (verifiedKey). k·Y is the same each time it is made: a proof checked before, or made here, is not multiplied again.
   */
  private readonly verified = new Set<string>();
  readonly mintQuotes = new Map<string, MintQuote>();
  readonly meltQuotes = new Map<string, MeltQuote>();
  readonly paidInvoices = new Set<string>();
  autoPayMintQuotes = true;
  /** NUT-20: quotes locked to the request's `pubkey` (false: the field is ignored, as a mint without NUT-20 does). */
  quoteLocks = true;
  /** The NUT-20 messages a signature is checked against (an older mint: only 'legacy'). */
  quoteSigFormats: QuoteSigFormat[] = ['v1'];
  meltNext: { outcome: MeltOutcome; fee: number } = { outcome: 'paid', fee: 0 };
  feeReserve: (amount: number) => number = (amount) => Math.max(2, Math.ceil(amount / 100));
  maxInputs = 1000;
  maxOutputs = 1000;

  constructor(private readonly now: () => number) {}

  addKeyset(o: KeysetOptions = {}): LabKeyset {
    const unit = o.unit ?? 'sat';
    const inputFeePpk = o.inputFeePpk ?? 0;
    const orders = Math.min(64, o.orders ?? 32) as 32;
    const options = {
      unit,
      input_fee_ppk: inputFeePpk,
      versionByte: o.idVersion ?? 1,
      ...(o.finalExpiry !== undefined && { expiry: o.finalExpiry }),
    };
    const pair = o.seed ? createNewMintKeys(orders, o.seed, options) : labMintKeys(orders, options);
    const keyset: LabKeyset = {
      id: pair.keysetId,
      unit,
      active: true,
      inputFeePpk,
      finalExpiry: o.finalExpiry,
      pubKeys: Object.fromEntries(Object.entries(pair.pubKeys).map(([a, k]) => [a, bytesToHex(k)])),
      privKeys: pair.privKeys,
    };
    this.keysets.push(keyset);
    return keyset;
  }

  /** NUT-02 rotation: a new active keyset for the unit; the unit's others stay valid as inputs but sign no more. */
  rotate(o: KeysetOptions = {}): LabKeyset {
    const unit = o.unit ?? 'sat';
    for (const k of this.keysets) if (k.unit === unit) k.active = false;
    return this.addKeyset({ ...o, unit });
  }

  keyset(id: string): LabKeyset {
    const k = this.keysets.find((s) => s.id === id);
    if (!k) throw new MintError(CODES.keysetUnknown, `keyset ${id} is not known`);
    return k;
  }

  active(unit: string): LabKeyset {
    const k = this.keysets.find((s) => s.unit === unit && s.active);
    if (!k) throw new MintError(CODES.unitUnsupported, `unit ${unit} is not supported`);
    return k;
  }

  state(y: string): State {
    return this.spent.has(y) ? 'SPENT' : this.pending.has(y) ? 'PENDING' : 'UNSPENT';
  }

  // ---- NUT-01/02 ----

  keysResponse(id?: string): unknown {
    const list = id === undefined ? this.keysets.filter((k) => k.active) : [this.keyset(id)];
    return {
      keysets: list.map((k) => ({
        id: k.id,
        unit: k.unit,
        active: k.active,
        input_fee_ppk: k.inputFeePpk,
        final_expiry: k.finalExpiry ?? null,
        keys: k.pubKeys,
      })),
    };
  }

  keysetsResponse(): unknown {
    return {
      keysets: this.keysets.map((k) => ({
        id: k.id,
        unit: k.unit,
        active: k.active,
        input_fee_ppk: k.inputFeePpk,
        final_expiry: k.finalExpiry ?? null,
      })),
    };
  }

  // ---- checking inputs and outputs ----

  /** Every input checked (NUT-00/-03/-11); returns their Ys, total, fee and unit. Marks nothing. */
  private checkInputs(raw: unknown): { ys: string[]; total: number; fee: number; unit: string; proofs: WireProof[] } {
    if (!Array.isArray(raw) || raw.length === 0)
      throw new MintError(CODES.malformed, 'inputs: a non-empty array is required');
    if (raw.length > this.maxInputs) throw new MintError(CODES.maxInputs, `more than ${this.maxInputs} inputs`);
    const proofs = raw.map(wireProof);
    const points = proofs.map((p) => hashToCurve(utf8.encode(p.secret)));
    const ys = points.map((Y) => Y.toHex(true));
    if (new Set(ys).size !== ys.length) throw new MintError(CODES.duplicateInputs, 'duplicate inputs provided');
    const keysets = proofs.map((p) => this.keyset(p.id));
    const units = new Set(keysets.map((k) => k.unit));
    if (units.size > 1) throw new MintError(CODES.multipleUnits, 'inputs of multiple units');
    proofs.forEach((p, i) => this.verifyProof(p, points[i]!, keysets[i]!));
    for (const y of ys) {
      if (this.spent.has(y)) throw new MintError(CODES.spent, 'Token already spent.');
      if (this.pending.has(y)) throw new MintError(CODES.pending, 'Token is pending.');
    }
    return {
      ys,
      proofs,
      total: proofs.reduce((s, p) => s + p.amount, 0),
      fee: feeFor(keysets),
      unit: keysets[0]!.unit,
    };
  }

  /**
   * Proofs this mint's own keys made, C = k·hash_to_curve(secret) (issued from the keys, or unblinded from its own
   * signatures where it funds a token): the mint checks them at a swap as a proof it has checked before (verifyProof).
   */
  signedHere(proofs: readonly Proof[]): void {
    for (const p of proofs) this.verified.add(verifiedKey(p.id, p.amount.toNumber(), p.C, p.secret));
  }

  /** `Y`: hash_to_curve(p.secret), the point its C must be k times. */
  private verifyProof(p: WireProof, Y: ReturnType<typeof hashToCurve>, k: LabKeyset): void {
    if (k.finalExpiry !== undefined && this.now() / 1000 >= k.finalExpiry)
      throw new MintError(CODES.keysetExpired, `keyset ${k.id} has expired`);
    const key = k.privKeys[String(p.amount)];
    if (!key) throw new MintError(CODES.proofInvalid, `no key for amount ${p.amount}`);
    // A proof presented again (a double spend, a retried or replayed swap) was checked already, and one the mint made
    // itself (signedHere) is k·Y by its making: k·Y is the same each time.
    const signed = verifiedKey(k.id, p.amount, p.C, p.secret);
    if (!this.verified.has(signed)) {
      let valid = false;
      try {
        valid = signY(Y, key).equals(pointFromHex(p.C));
      } catch {
        /* an unparsable C is an invalid proof */
      }
      if (!valid) throw new MintError(CODES.proofInvalid, 'could not verify proofs.');
      this.verified.add(signed);
    }
    this.checkSpendingConditions(p);
  }

  /** NUT-10/11: a P2PK secret needs its witness (SIG_INPUTS); HTLC and SIG_ALL are not implemented here: refused. */
  private checkSpendingConditions(p: WireProof): void {
    if (!p.secret.startsWith('[')) return;
    let kind: string;
    try {
      kind = getSecretKind(p.secret);
    } catch {
      return; // not a well-known secret: an ordinary (if odd) secret string
    }
    const proof = { ...p, amount: Amount.from(p.amount) } as Proof;
    let ok = false;
    try {
      ok = kind === 'P2PK' && getP2PKSigFlag(proof.secret) !== 'SIG_ALL' && isP2PKSpendAuthorised(proof);
    } catch {
      /* malformed conditions */
    }
    if (!ok) throw new MintError(CODES.proofInvalid, `spending conditions not met (${kind})`);
  }

  /**
   * `blank`: NUT-08's outputs for change, whose amounts the wallet leaves open (cashu-ts sends 0) and the mint sets.
   */
  private checkOutputs(
    raw: unknown,
    unit: string | undefined,
    blank = false,
  ): { outputs: WireBlindedMessage[]; total: number; unit: string } {
    if (!Array.isArray(raw) || raw.length === 0)
      throw new MintError(CODES.malformed, 'outputs: a non-empty array is required');
    if (raw.length > this.maxOutputs) throw new MintError(CODES.maxOutputs, `more than ${this.maxOutputs} outputs`);
    const outputs = raw.map((o) => wireBlindedMessage(o, blank));
    if (new Set(outputs.map((o) => o.B_)).size !== outputs.length)
      throw new MintError(CODES.duplicateOutputs, 'duplicate outputs provided');
    const keysets = outputs.map((o) => this.keyset(o.id));
    const units = new Set(keysets.map((k) => k.unit));
    if (units.size > 1) throw new MintError(CODES.multipleUnits, 'outputs of multiple units');
    const outUnit = keysets[0]!.unit;
    if (unit !== undefined && outUnit !== unit)
      throw new MintError(CODES.unitMismatch, 'inputs and outputs not of same unit');
    outputs.forEach((o, i) => {
      const k = keysets[i]!;
      if (!k.active) throw new MintError(CODES.keysetInactive, `keyset ${k.id} is inactive, cannot sign messages`);
      if (!blank && !k.privKeys[String(o.amount)])
        throw new MintError(CODES.malformed, `no key for amount ${o.amount}`);
      if (this.issued.has(o.B_)) throw new MintError(CODES.outputsSigned, 'outputs have already been signed before.');
    });
    return { outputs, total: outputs.reduce((s, o) => s + o.amount, 0), unit: outUnit };
  }

  /** Sign (with a NUT-12 DLEQ) and remember each B_ for restore. Only after every check passed. */
  private sign(outputs: readonly WireBlindedMessage[]): WireSignature[] {
    return outputs.map((o) => {
      const key = this.keyset(o.id).privKeys[String(o.amount)]!;
      const { C_, ...dleq } = signBlinded(blindedPointOf(o), key);
      const sig: WireSignature = {
        amount: o.amount,
        id: o.id,
        C_: C_.toHex(true),
        dleq: { e: bytesToHex(dleq.e), s: bytesToHex(dleq.s) },
      };
      rememberSignedPoint(sig, C_);
      this.issued.set(o.B_, sig);
      return sig;
    });
  }

  // ---- NUT-03 swap ----

  swap(body: unknown): { signatures: WireSignature[] } {
    const req = object(body);
    const inputs = this.checkInputs(req.inputs);
    const outputs = this.checkOutputs(req.outputs, inputs.unit);
    if (inputs.total - inputs.fee !== outputs.total) {
      throw new MintError(
        CODES.unbalanced,
        `inputs (${inputs.total}) - fees (${inputs.fee}) != outputs (${outputs.total})`,
      );
    }
    inputs.proofs.forEach((p, i) =>
      this.spent.set(inputs.ys[i]!, p.witness === undefined ? {} : { witness: p.witness }),
    );
    return { signatures: this.sign(outputs.outputs) };
  }

  // ---- NUT-07, NUT-09 ----

  checkstate(body: unknown): unknown {
    const ys = object(body).Ys;
    if (!Array.isArray(ys) || !ys.every((y) => typeof y === 'string'))
      throw new MintError(CODES.malformed, 'Ys: an array of hex strings is required');
    return { states: ys.map((y: string) => ({ Y: y, state: this.state(y), witness: this.witnessOf(y) })) };
  }

  private witnessOf(y: string): string | null {
    const w = this.spent.get(y)?.witness;
    return w === undefined ? null : typeof w === 'string' ? w : JSON.stringify(w);
  }

  restore(body: unknown): unknown {
    const raw = object(body).outputs;
    if (!Array.isArray(raw)) throw new MintError(CODES.malformed, 'outputs: an array is required');
    // NUT-09: looked up by B_ alone; a restoring wallet does not know the amounts (cashu-ts sends 0).
    const found = raw.map((o) => wireBlindedMessage(o, true)).filter((o) => this.issued.has(o.B_));
    const signatures = found.map((o) => this.issued.get(o.B_)!);
    return {
      outputs: found.map((o, i) => ({ ...o, amount: signatures[i]!.amount })),
      signatures,
      promises: signatures,
    };
  }

  // ---- NUT-04 (bolt11, NUT-23) ----

  createMintQuote(body: unknown): MintQuote {
    const req = object(body);
    const amount = positiveInt(req.amount, 'amount');
    const unit = typeof req.unit === 'string' ? req.unit : 'sat';
    this.active(unit);
    const quote: MintQuote = {
      quote: randomUUID(),
      request: fakeInvoice(unit === 'msat' ? amount : amount * 1000),
      amount,
      unit,
      state: this.autoPayMintQuotes ? 'PAID' : 'UNPAID',
      expiry: Math.floor(this.now() / 1000) + 3600,
      pubkey: this.quoteLocks && req.pubkey !== undefined && req.pubkey !== null ? quotePubkey(req.pubkey) : null,
    };
    this.mintQuotes.set(quote.quote, quote);
    return quote;
  }

  mintQuote(id: string): MintQuote {
    const q = this.mintQuotes.get(id);
    if (!q) throw new MintError(CODES.malformed, `quote ${id} not found`);
    return q;
  }

  /** The fake Lightning node saw the invoice paid. */
  payMintQuote(id: string): void {
    const q = this.mintQuote(id);
    if (q.state === 'UNPAID') q.state = 'PAID';
  }

  mint(body: unknown): { signatures: WireSignature[] } {
    const req = object(body);
    const q = this.mintQuote(String(req.quote));
    if (q.state === 'UNPAID') throw new MintError(CODES.quoteNotPaid, 'quote not paid');
    if (q.state === 'ISSUED') throw new MintError(CODES.quoteIssued, 'quote already issued');
    const outputs = this.checkOutputs(req.outputs, q.unit);
    if (outputs.total !== q.amount)
      throw new MintError(CODES.unbalanced, `outputs (${outputs.total}) != quote amount (${q.amount})`);
    // NUT-20: over the outputs as the request sent them (B_ in its own case, amounts as given).
    if (q.pubkey !== null)
      checkQuoteSignature(q.pubkey, q.quote, signedOutputs(req.outputs), req.signature, this.quoteSigFormats);
    q.state = 'ISSUED';
    return { signatures: this.sign(outputs.outputs) };
  }

  // ---- NUT-05 (bolt11) with NUT-08 change ----

  createMeltQuote(body: unknown): Omit<MeltQuote, 'held'> {
    const req = object(body);
    if (typeof req.request !== 'string') throw new MintError(CODES.malformed, 'request: a bolt11 invoice is required');
    const unit = typeof req.unit === 'string' ? req.unit : 'sat';
    this.active(unit);
    const msat = invoiceAmountMsat(req.request);
    if (msat === null) throw new MintError(CODES.amountlessInvoice, 'amountless invoice is not supported');
    const amount = unit === 'msat' ? msat : Math.ceil(msat / 1000);
    const q: MeltQuote = {
      quote: randomUUID(),
      request: req.request,
      amount,
      unit,
      fee_reserve: this.feeReserve(amount),
      state: 'UNPAID',
      expiry: Math.floor(this.now() / 1000) + 3600,
      payment_preimage: null,
    };
    this.meltQuotes.set(q.quote, q);
    return publicMelt(q);
  }

  meltQuote(id: string): Omit<MeltQuote, 'held'> {
    const q = this.meltQuotes.get(id);
    if (!q) throw new MintError(CODES.malformed, `quote ${id} not found`);
    return publicMelt(q);
  }

  melt(body: unknown): Omit<MeltQuote, 'held'> {
    const req = object(body);
    const q = this.meltQuotes.get(String(req.quote));
    if (!q) throw new MintError(CODES.malformed, `quote ${String(req.quote)} not found`);
    if (q.state === 'PENDING') throw new MintError(CODES.quotePending, 'quote is pending');
    if (q.state === 'PAID' || this.paidInvoices.has(q.request))
      throw new MintError(CODES.invoicePaid, 'invoice already paid');
    const inputs = this.checkInputs(req.inputs);
    if (inputs.unit !== q.unit) throw new MintError(CODES.unitMismatch, 'inputs and quote not of same unit');
    const outputs =
      req.outputs === undefined || (Array.isArray(req.outputs) && req.outputs.length === 0)
        ? []
        : this.checkOutputs(req.outputs, q.unit, true).outputs;
    if (inputs.total - inputs.fee < q.amount + q.fee_reserve) {
      throw new MintError(
        CODES.unbalanced,
        `inputs (${inputs.total}) - fees (${inputs.fee}) < amount + fee_reserve (${q.amount + q.fee_reserve})`,
      );
    }
    const { outcome, fee } = this.meltNext;
    if (outcome === 'failed') throw new MintError(CODES.lightningFailed, 'Lightning payment failed');
    for (const y of inputs.ys) this.pending.add(y);
    q.held = { ys: inputs.ys, inputTotal: inputs.total, inputFee: inputs.fee, outputs };
    q.state = 'PENDING';
    if (outcome === 'paid') this.settleMelt(q.quote, 'paid', fee);
    return publicMelt(q);
  }

  /** The fake payment of a PENDING melt lands: paid (inputs SPENT, change signed) or failed (inputs free again). */
  settleMelt(id: string, outcome: 'paid' | 'failed', lightningFee = this.meltNext.fee): void {
    const q = this.meltQuotes.get(id);
    if (!q?.held || q.state !== 'PENDING') throw new Error(`melt quote ${id} is not pending`);
    const held = q.held;
    delete q.held;
    for (const y of held.ys) this.pending.delete(y);
    if (outcome === 'failed') {
      q.state = 'UNPAID';
      return;
    }
    for (const y of held.ys) this.spent.set(y, {});
    q.state = 'PAID';
    q.payment_preimage = bytesToHex(randomBytes(32));
    this.paidInvoices.add(q.request);
    // NUT-08: the overpaid fee reserve comes back on the blank outputs, the mint choosing their amounts.
    const changeAmounts = decompose(
      held.inputTotal - held.inputFee - q.amount - Math.min(lightningFee, q.fee_reserve),
    ).reverse();
    const blanks = held.outputs.slice(0, changeAmounts.length).map((o, i) => ({ ...o, amount: changeAmounts[i]! }));
    if (blanks.length > 0) q.change = this.sign(blanks);
  }
}

function publicMelt(q: MeltQuote): Omit<MeltQuote, 'held'> {
  const { held: _held, ...rest } = q;
  return rest;
}

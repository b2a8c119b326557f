/**
 * A Cashu token as the `cashu` method reads it, and the swap's cryptography (NUT-00, NUT-02, NUT-03, NUT-10), pure.
 * Decoding is cashu-ts's (V3 `cashuA…` JSON, V4 `cashuB…` CBOR with short keyset ids resolved against the mint's
 * /v1/keysets); the checks are sluice's, each refusing before anything moves.
 *
 * Outputs use random secrets (not NUT-13 seed counters): the intent on flash holds every output's secret and blinding
 * factor, which is what a NUT-09 restore or a NUT-19 replay needs; a seed would only add a recovery path for a lost
 * store, whose proofs were then lost with it anyway.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cashuLib, type CashuLib } from './loader.ts';
import { SluiceError } from '../errors.ts';
import { normalizeMintUrl } from './mint-url.ts';

/**
 * A proof as sluice stores and sends it: amount as a safe integer (sat), no DLEQ or witness (never needed to spend).
 */
export interface StoredProof {
  id: string;
  amount: number;
  secret: string;
  C: string;
}

/** One output of a swap, with what unblinds its signature (secret and blinding factor r, hex). */
export interface SwapOutput {
  amount: number;
  id: string;
  B_: string;
  secret: string;
  r: string;
}

export interface KeysetEntry {
  id: string;
  unit: string;
  active: boolean;
  /** NUT-02: the fee per input, in parts per thousand of the unit. */
  inputFeePpk: number;
}

/**
 * The most proofs one token may carry (a 21-bit amount split in powers of two needs at most 21; wallets send a few
 * more).
 */
export const MAX_PROOFS = 64;
/** The longest token text taken (64 proofs of a V3 token, with DLEQs, fit in about 40 KB). */
export const MAX_TOKEN_CHARS = 48 * 1024;
/** The largest value one token may carry (sat): far above any WiFi sale, and every amount stays a safe integer. */
export const MAX_TOKEN_SAT = 2n ** 40n;

export interface DecodedToken {
  /** Normalised (config's normalizeMintUrl). */
  mint: string;
  unit: string;
  proofs: StoredProof[];
  /** Sum of the proofs' amounts. */
  value: bigint;
}

const utf8 = new TextEncoder();

const invalid = (message: string): SluiceError => new SluiceError('ERR_CASHU_TOKEN_INVALID', message);

/**
 * What a token says about itself without the mint's keysets: its mint and unit (for the checks that need no network).
 */
export function tokenHeader(text: unknown): { mint: string; unit: string } {
  const token = tokenText(text);
  let meta: ReturnType<CashuLib['getTokenMetadata']>;
  try {
    meta = cashuLib().getTokenMetadata(token);
  } catch (err) {
    throw invalid(`not a Cashu token: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200));
  }
  const mint = normalizeMintUrl(meta.mint);
  if (mint === null) throw invalid('the token names no http(s) mint');
  return { mint, unit: meta.unit ?? 'sat' };
}

function tokenText(text: unknown): string {
  if (typeof text !== 'string') throw invalid('payment.token must be a Cashu token string (cashuA… or cashuB…)');
  const token = text.trim();
  if (token.length > MAX_TOKEN_CHARS)
    throw new SluiceError('ERR_CASHU_TOO_LARGE', `the token is longer than ${MAX_TOKEN_CHARS} characters`);
  if (!/^cashu[AB][A-Za-z0-9_\-+/=]+$/.test(token))
    throw invalid('payment.token must be a Cashu token (cashuA… or cashuB…)');
  return token;
}

/** Decodes a token against its mint's keyset ids (V4 short ids resolved) and checks its proofs' shape. */
export function decodeToken(text: unknown, keysets: readonly KeysetEntry[]): DecodedToken {
  const token = tokenText(text);
  const header = tokenHeader(token);
  let decoded: ReturnType<CashuLib['getDecodedToken']>;
  try {
    decoded = cashuLib().getDecodedToken(
      token,
      keysets.map((k) => k.id),
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // cashu-ts cannot map a V4 short id to any of the mint's keysets: a keyset the mint does not list.
    if (/keyset/i.test(message))
      throw new SluiceError(
        'ERR_CASHU_KEYSET_UNKNOWN',
        `the token's keyset is not one the mint lists (${message.slice(0, 160)})`,
      );
    throw invalid(`not a Cashu token: ${message}`.slice(0, 200));
  }
  if (decoded.proofs.length === 0) throw invalid('the token holds no proofs');
  if (decoded.proofs.length > MAX_PROOFS)
    throw new SluiceError(
      'ERR_CASHU_TOO_LARGE',
      `the token holds ${decoded.proofs.length} proofs; at most ${MAX_PROOFS} are taken`,
    );
  const proofs: StoredProof[] = [];
  const secrets = new Set<string>();
  let value = 0n;
  for (const p of decoded.proofs) {
    const amount = p.amount.toBigInt();
    if (amount <= 0n || amount > MAX_TOKEN_SAT) throw invalid('a proof has an amount out of range');
    if (
      typeof p.secret !== 'string' ||
      p.secret === '' ||
      p.secret.length > 1024 ||
      typeof p.C !== 'string' ||
      !/^0[23][0-9a-f]{64}$/i.test(p.C)
    ) {
      throw invalid('a proof is malformed');
    }
    if (isSpendingCondition(p.secret)) {
      throw new SluiceError(
        'ERR_CASHU_TOKEN_LOCKED',
        'the token is locked to a spending condition (NUT-10: P2PK or HTLC): send an unlocked token',
      );
    }
    if (secrets.has(p.secret)) throw invalid('the token holds the same proof twice');
    secrets.add(p.secret);
    if (!keysets.some((k) => k.id === p.id))
      throw new SluiceError('ERR_CASHU_KEYSET_UNKNOWN', `keyset ${p.id.slice(0, 66)} is not one the mint lists`);
    value += amount;
    proofs.push({ id: p.id, amount: Number(amount), secret: p.secret, C: p.C.toLowerCase() });
  }
  if (value > MAX_TOKEN_SAT)
    throw new SluiceError('ERR_CASHU_TOO_LARGE', 'the token is worth more than one purchase may be');
  return { mint: header.mint, unit: decoded.unit ?? header.unit, proofs, value };
}

/** NUT-10: a secret that is a JSON array `[kind, {…}]` carries a spending condition (P2PK, HTLC, …). */
export function isSpendingCondition(secret: string): boolean {
  if (!secret.trimStart().startsWith('[')) return false;
  try {
    const parsed: unknown = JSON.parse(secret);
    return Array.isArray(parsed) && typeof parsed[0] === 'string';
  } catch {
    return false;
  }
}

/** NUT-00 Y = hash_to_curve(secret), compressed hex: how a mint names a proof in its spent set. */
export function yOf(secret: string): string {
  return cashuLib().hashToCurve(utf8.encode(secret)).toHex(true);
}

/** The payment's reference: one per set of proofs, whatever token encodes them (V3 or V4, any order). */
export function referenceOf(proofs: readonly StoredProof[]): string {
  const ys = proofs.map((p) => yOf(p.secret)).sort();
  return `cashu:${createHash('sha256').update(ys.join(',')).digest('hex')}`;
}

/** NUT-02: the swap's fee, ceil(Σ input_fee_ppk / 1000), from the keysets of the inputs. */
export function inputFee(proofs: ReadonlyArray<Pick<StoredProof, 'id'>>, keysets: readonly KeysetEntry[]): bigint {
  let ppk = 0n;
  for (const p of proofs) ppk += BigInt(keysets.find((k) => k.id === p.id)?.inputFeePpk ?? 0);
  return (ppk + 999n) / 1000n;
}

/** `amount` in the powers of two the keyset signs (its `keys` amounts), largest first. */
export function splitAmount(amount: bigint, available: readonly bigint[]): number[] {
  const sizes = [...available].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  const out: number[] = [];
  let left = amount;
  for (const size of sizes) {
    while (size > 0n && left >= size) {
      out.push(Number(size));
      left -= size;
    }
  }
  if (left !== 0n)
    throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', `the mint's keyset cannot sign an amount of ${amount}`);
  return out;
}

/**
 * Fresh outputs for `amounts` on keyset `id`: random secrets (32 bytes, hex, as wallets make them) and blinding
 * factors. The B_ are made affine with one shared inversion: encoding a projective point inverts its Z twice (its
 * validity check, then its encoding).
 */
export function makeOutputs(amounts: readonly number[], id: string): SwapOutput[] {
  const { blindMessage, normalizeZ, secp256k1 } = cashuLib();
  const secrets = amounts.map(() => randomBytes(32).toString('hex'));
  const blinded = secrets.map((secret) => blindMessage(utf8.encode(secret)));
  const points = normalizeZ(
    secp256k1.Point,
    blinded.map((b) => b.B_),
  );
  return amounts.map((amount, i) => ({
    amount,
    id,
    B_: points[i]!.toHex(true),
    secret: secrets[i]!,
    r: blinded[i]!.r.toString(16).padStart(64, '0'),
  }));
}

type CurvePoint = ReturnType<CashuLib['pointFromHex']>;

/**
 * Each keyset's keys read as points, kept while its record is (MintReads keeps a keyset's keys once read): reading a
 * compressed point is a square root, and every swap unblinds with the same few keys.
 */
const keyPoints = new WeakMap<Readonly<Record<string, string>>, Map<string, CurvePoint>>();

function keyPoint(keys: Readonly<Record<string, string>>, output: SwapOutput): CurvePoint {
  const amount = String(output.amount);
  let points = keyPoints.get(keys);
  if (points === undefined) keyPoints.set(keys, (points = new Map()));
  let K = points.get(amount);
  if (K === undefined) {
    const key = keys[amount];
    if (key === undefined)
      throw new SluiceError(
        'ERR_CASHU_MINT_UNAVAILABLE',
        `the mint's keyset ${output.id} has no key for ${output.amount}`,
      );
    points.set(amount, (K = cashuLib().pointFromHex(key)));
  }
  return K;
}

/**
 * A mint's blind signatures on our outputs → the proofs (C = C_ − r·K, K the keyset's key for the amount), made affine
 * with one shared inversion.
 */
export function unblindAll(
  outputs: readonly SwapOutput[],
  signatures: readonly string[],
  keys: Readonly<Record<string, string>>,
): StoredProof[] {
  const { unblindSignature, pointFromHex, normalizeZ, secp256k1 } = cashuLib();
  const Cs = normalizeZ(
    secp256k1.Point,
    outputs.map((o, i) => {
      const K = keyPoint(keys, o);
      return unblindSignature(pointFromHex(signatures[i]!), BigInt(`0x${o.r}`), K);
    }),
  );
  return outputs.map((o, i) => ({ id: o.id, amount: o.amount, secret: o.secret, C: Cs[i]!.toHex(true) }));
}

/** A mint's blind signature on one of our outputs → the proof (unblindAll). */
export function unblind(output: SwapOutput, C_: string, keys: Readonly<Record<string, string>>): StoredProof {
  return unblindAll([output], [C_], keys)[0]!;
}

/**
 * BIP-340 Schnorr verification written from the BIP's own pseudocode (bitcoin/bips bip-0340.mediawiki, "Verification"),
 * with bigints and node:crypto's SHA-256 only: a verifier that shares no code with @noble/curves, so a test that checks
 * sluice's signatures with it (as TollGate's reseller checks the advertisement's with its own Go library) is not the
 * signer checking itself. test/payments/cashu-nostr.test.ts runs it against the BIP's vectors.
 */
import { createHash } from 'node:crypto';

const P = 2n ** 256n - 0x1000003d1n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G: Affine = [
  0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
];

type Affine = readonly [bigint, bigint];
type Point = Affine | null;

/** a mod m in [0, m): one division (a bigint's % keeps the dividend's sign). */
function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function pow(b: bigint, e: bigint, m = P): bigint {
  let r = 1n;
  b = mod(b, m);
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

/** The inverse mod P by the extended Euclidean algorithm (Fermat's a^(P-2) is the same number, 100× slower). */
function inv(a: bigint): bigint {
  let [r0, r1, t0, t1] = [P, mod(a), 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1];
  }
  return mod(t0);
}

/** Jacobian coordinates (x = X/Z², y = Y/Z³; Z = 0 is the point at infinity): one inversion per multiplication. */
type Jacobian = readonly [bigint, bigint, bigint];
const INFINITY: Jacobian = [0n, 1n, 0n];

function double([X, Y, Z]: Jacobian): Jacobian {
  if (Z === 0n || Y === 0n) return INFINITY;
  const YY = mod(Y * Y);
  const S = mod(4n * X * YY);
  const M = mod(3n * X * X);
  const X3 = mod(M * M - 2n * S);
  return [X3, mod(M * (S - X3) - 8n * YY * YY), mod(2n * Y * Z)];
}

function addJ(p: Jacobian, q: Jacobian): Jacobian {
  if (p[2] === 0n) return q;
  if (q[2] === 0n) return p;
  const Z1Z1 = mod(p[2] * p[2]);
  const Z2Z2 = mod(q[2] * q[2]);
  const U1 = mod(p[0] * Z2Z2);
  const U2 = mod(q[0] * Z1Z1);
  const S1 = mod(p[1] * Z2Z2 * q[2]);
  const S2 = mod(q[1] * Z1Z1 * p[2]);
  if (U1 === U2) return S1 === S2 ? double(p) : INFINITY;
  const H = mod(U2 - U1);
  const R = mod(S2 - S1);
  const HH = mod(H * H);
  const HHH = mod(HH * H);
  const X3 = mod(R * R - HHH - 2n * U1 * HH);
  return [X3, mod(R * (U1 * HH - X3) - S1 * HHH), mod(H * p[2] * q[2])];
}

function affine([X, Y, Z]: Jacobian): Point {
  if (Z === 0n) return null;
  const zi = inv(Z);
  return [mod(X * zi * zi), mod(Y * zi * zi * zi)];
}

/**
 * a·p + b·q in one pass (Shamir's trick): one doubling a bit for both, and an addition of p, q or p + q where a bit of
 * a or b is set, in place of two multiplications and their doublings each.
 */
function mulAdd(p: Affine, a: bigint, q: Affine, b: bigint): Jacobian {
  const pj: Jacobian = [p[0], p[1], 1n];
  const qj: Jacobian = [q[0], q[1], 1n];
  const both = addJ(pj, qj);
  let r = INFINITY;
  for (let i = 255n; i >= 0n; i--) {
    r = double(r);
    const bits = (((a >> i) & 1n) << 1n) | ((b >> i) & 1n);
    if (bits === 3n) r = addJ(r, both);
    else if (bits === 2n) r = addJ(r, pj);
    else if (bits === 1n) r = addJ(r, qj);
  }
  return r;
}

function liftX(x: bigint): Point {
  if (x >= P) return null;
  const c = mod(x ** 3n + 7n);
  const y = pow(c, (P + 1n) / 4n);
  if (pow(y, 2n) !== c) return null;
  return [x, y % 2n === 0n ? y : P - y];
}

function taggedHash(tag: string, ...parts: Buffer[]): Buffer {
  const t = createHash('sha256').update(tag).digest();
  return createHash('sha256')
    .update(Buffer.concat([t, t, ...parts]))
    .digest();
}

const int = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);

/** BIP-340 Verify(pk, m, sig) over hex inputs; any malformed input is simply false. */
export function bip340Verify(pubkeyHex: string, messageHex: string, sigHex: string): boolean {
  const pk = Buffer.from(pubkeyHex, 'hex');
  const m = Buffer.from(messageHex, 'hex');
  const sig = Buffer.from(sigHex, 'hex');
  if (pk.length !== 32 || sig.length !== 64 || pk.toString('hex') !== pubkeyHex.toLowerCase()) return false;
  const point = liftX(int(pk));
  if (point === null) return false;
  const r = int(sig.subarray(0, 32));
  const s = int(sig.subarray(32));
  if (r >= P || s >= N) return false;
  const e = mod(int(taggedHash('BIP0340/challenge', sig.subarray(0, 32), pk, m)), N);
  const R = affine(mulAdd(G, s, point, N - e));
  return R !== null && R[1] % 2n === 0n && R[0] === r;
}

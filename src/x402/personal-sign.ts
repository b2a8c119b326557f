/**
 * EIP-191 `personal_sign` (version 0x45: "\x19Ethereum Signed Message:\n" + length + message): what a browser wallet
 * signs for a plain text message, and the one kind sluice asks for outside a payment (the pay page's proof that the
 * customer holds the paying wallet). Low-s only, like every signature sluice verifies (signature.ts).
 */
import { isLowS } from './signature.ts';
import { loadEvm } from './evm-loader.ts';

/**
 * The lowercase address that signed `message`, or null when the signature is not a 65-byte low-s one or recovers
 * nothing. Never throws on bad input: the caller answers "not your wallet" either way (viem's code that cannot be
 * loaded is ERR_MODULE_LOAD, thrown).
 */
export async function recoverPersonalSigner(message: string, signature: string): Promise<string | null> {
  if (!isLowS(signature)) return null;
  const { recoverMessageAddress } = await loadEvm();
  try {
    const address = await recoverMessageAddress({ message, signature: signature as `0x${string}` });
    return address.toLowerCase();
  } catch {
    return null;
  }
}

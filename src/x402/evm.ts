/**
 * The viem functions x402 (`exact`, batch-settlement, upto, the wallet proof), the escrow receipts and the payment
 * methods over them call: the one
 * module of src/ (the pay page's browser code apart) that imports viem's code, loaded by evm-loader.ts when first
 * needed. Only this module is imported dynamically, so the bundle's chunk holds these exports and what they reach, not
 * all of viem. From viem/utils, not viem's index: where viem is loaded as it is (tests and benches from the sources),
 * the index loads all its ~480 modules (its clients and actions too), ~0.5 s of CPU against ~0.3 s.
 */
export {
  encodeAbiParameters,
  getAddress,
  hashTypedData,
  isAddress,
  isHex,
  keccak256,
  recoverAddress,
  recoverMessageAddress,
  recoverTypedDataAddress,
  toHex,
} from 'viem/utils';
// The batch-settlement receiver authorizer's key (src/payments/batch-settlement/x402-batch*.ts).
export { privateKeyToAccount } from 'viem/accounts';

/**
 * The viem functions x402 (`exact`, batch-settlement, upto, the wallet proof), the escrow receipts and the payment
 * methods over them call: the one
 * module of src/ (the pay page's browser code apart) that imports viem's code, loaded by evm-loader.ts when first
 * needed. Only this module is imported dynamically, so the bundle's chunk holds these exports and what they reach, not
 * all of viem.
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
} from 'viem';
// The batch-settlement receiver authorizer's key (src/payments/batch-settlement/x402-batch*.ts).
export { privateKeyToAccount } from 'viem/accounts';

/**
 * A payment method whose own state file cannot be read back at start (x402.json, escrow.json) is left out: that one
 * method is unavailable (a purchase with it is refused as an unknown method, and reload lists it in
 * restart_required), while the daemon, the other methods, the meter and the gates run. The file is left as it is: it
 * records money taken or owed, which only the operator can tell how to mend (docs/errors.md).
 */
import { SluiceError, type AnyErrorCode, type ErrorCode } from '../errors.ts';
import type { Log } from '../log.ts';

/** A method that loads code when it opens (viem: x402/evm-loader.ts) and cannot: left out the same way. */
const UNLOADABLE_CODE: ErrorCode = 'ERR_MODULE_LOAD';

/**
 * `open()`'s result, or null (logged as an error with the file's code) when the method's state cannot be read back:
 * `damaged` are the codes a method's state file fails to open with (the plugins' damagedState); anything else is a
 * bug and stops the start as before.
 */
export async function unlessStateDamaged<T>(
  method: string,
  open: () => Promise<T>,
  damaged: readonly AnyErrorCode[],
  log: Log,
): Promise<T | null> {
  try {
    return await open();
  } catch (err) {
    if (err instanceof SluiceError && err.code === UNLOADABLE_CODE) {
      log.error(
        `payment method ${method} unavailable: its code cannot be loaded (reinstall the package, then restart)`,
        { code: err.code, method, reason: err.message },
      );
      return null;
    }
    if (!(err instanceof SluiceError) || !damaged.includes(err.code)) throw err;
    log.error(
      `payment method ${method} unavailable: its state file cannot be read back (left as it is; mend or move ` +
        'it, then restart)',
      { code: err.code, method, reason: err.message },
    );
    return null;
  }
}

/**
 * Which ubus status a SluiceError code is answered with. Callers see both: a data reply `{error: {code, message}}`
 * (why) followed by the non-zero status (the standard ubus verdict, which is all `ubus call` and LuCI's rpc show
 * without reading the data). Each code declares its status in errors.ts's ERRORS, by name; this turns it into the
 * number.
 */
import { Status } from '../ubus/index.ts';
import { ubusStatusOf, type AnyErrorCode } from '../errors.ts';

export function statusForCode(code: AnyErrorCode): number {
  return Status[ubusStatusOf(code)];
}

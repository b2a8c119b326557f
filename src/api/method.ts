/**
 * One method of the `sluice` ubus object, declared as data: its argument policy (checked once, before the handler),
 * whether it is admin-only, and the handler, whose argument type comes from the policy (ArgsOf). methods.ts and
 * venue-methods.ts declare their tables with it.
 */
import type { ArgSpecs, ArgsOf } from './args.ts';
import type { CallOrigin, SluiceBackend } from './backend.ts';
import type { BlobmsgTable } from '../ubus/index.ts';

/** Who is calling (invokeMethod's `origin`): not an argument, so no caller can claim another's name. */
export interface CallContext {
  origin: CallOrigin;
}

export interface ApiMethod<S extends ArgSpecs = ArgSpecs> {
  args: S;
  adminOnly: boolean;
  handler(args: ArgsOf<S>, backend: SluiceBackend, call: CallContext): Promise<BlobmsgTable> | BlobmsgTable;
}

/** Declares a method: `const` keeps the policy's literal kinds, `required` flags and `oneOf` values for ArgsOf. */
export function method<const S extends ArgSpecs>(declared: ApiMethod<S>): ApiMethod<S> {
  return declared;
}

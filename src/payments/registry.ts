/** The payment methods this router accepts, by name. */
import { SluiceError } from '../errors.ts';
import type { PaymentMethod } from './types.ts';

const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export class PaymentRegistry {
  private readonly methods = new Map<string, PaymentMethod>();

  constructor(methods: Iterable<PaymentMethod> = []) {
    for (const m of methods) this.register(m);
  }

  register(method: PaymentMethod): void {
    if (!NAME_RE.test(method.name))
      throw new SluiceError('ERR_PAYMENT_METHOD_INVALID', `bad payment method name: ${JSON.stringify(method.name)}`);
    if (this.methods.has(method.name))
      throw new SluiceError('ERR_PAYMENT_METHOD_INVALID', `payment method ${method.name} is registered twice`);
    this.methods.set(method.name, method);
  }

  /** A method switched off by a reload: no purchase reaches it (ERR_UNKNOWN_PAYMENT_METHOD) until it is back. */
  unregister(name: string): void {
    this.methods.delete(name);
  }

  get(name: unknown): PaymentMethod {
    const method = typeof name === 'string' ? this.methods.get(name) : undefined;
    if (!method) {
      // Customers read this (POST /voucher, the pay page): the admin-only methods are named apart, not as ways to pay.
      const open = [...this.methods.values()].filter((m) => !m.adminOnly).map((m) => m.name);
      const admin = [...this.methods.values()].filter((m) => m.adminOnly).map((m) => m.name);
      throw new SluiceError(
        'ERR_UNKNOWN_PAYMENT_METHOD',
        `unknown payment method ${JSON.stringify(String(name).slice(0, 40))}; purchases ` +
          `accept: ${open.join(', ') || 'none'}` +
          (admin.length > 0 ? ` (admin only: ${admin.join(', ')})` : ''),
        { details: { accepted: open, admin_only: admin } },
      );
    }
    return method;
  }

  has(name: string): boolean {
    return this.methods.has(name);
  }

  list(): Array<{ name: string; adminOnly: boolean }> {
    return [...this.methods.values()].map((m) => ({ name: m.name, adminOnly: m.adminOnly }));
  }
}

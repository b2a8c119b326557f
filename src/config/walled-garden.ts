/**
 * The walled garden: hosts a client reaches before it pays (`list walled_garden` and `option walled_garden_ports` in
 * `main`); garden-hosts.ts adds the hosts the enabled payment methods need. Pure. docs/configuration.md explains them.
 */
import type { SectionReader } from './reader.ts';

/** The ports opened to the garden's hosts when `walled_garden_ports` is absent: HTTPS, then HTTP. */
export const WALLED_GARDEN_DEFAULT_PORTS: readonly number[] = [443, 80];
/** A bound on what the kernel set and each resolution round hold. */
export const WALLED_GARDEN_MAX_HOSTS = 64;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A host name as DNS spells one (letters, digits, hyphens; dot-separated labels; at least two), lower-cased. */
export function hostnameProblem(v: string): string | undefined {
  const host = v.toLowerCase().replace(/\.$/, '');
  if (host.includes('*')) return 'must be a host name; wildcards (*.example.com) are not supported: list each host';
  if (host.includes('/') || host.includes(':'))
    return 'must be a host name (wallet.example.com), not a URL, an address with a port or an IPv6 address';
  if (host.length > 253) return 'must be a host name of at most 253 characters';
  const labels = host.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)))
    return 'must be a host name such as wallet.example.com (letters, digits, hyphens; labels joined by dots)';
  return undefined;
}

export interface WalledGardenConfig {
  /** `list walled_garden`: host names as the operator wrote them, lower-cased, no duplicates. */
  hosts: readonly string[];
  /** `walled_garden_ports`: TCP and UDP ports opened to the garden's addresses. */
  ports: readonly number[];
}

export function readWalledGarden(r: SectionReader): WalledGardenConfig {
  const raw = r.raw('walled_garden');
  const items = raw === undefined ? [] : Array.isArray(raw) ? raw : raw.split(/\s+/);
  const hosts: string[] = [];
  for (const item of items) {
    if (item === '') continue;
    const problem = hostnameProblem(item);
    if (problem !== undefined) r.report('walled_garden', problem, item);
    else {
      const host = item.toLowerCase().replace(/\.$/, '');
      if (!hosts.includes(host)) hosts.push(host);
    }
  }
  if (hosts.length > WALLED_GARDEN_MAX_HOSTS) {
    r.report('walled_garden', `must list at most ${WALLED_GARDEN_MAX_HOSTS} hosts`);
    hosts.length = WALLED_GARDEN_MAX_HOSTS;
  }
  const ports = r.parsed('walled_garden_ports', WALLED_GARDEN_DEFAULT_PORTS, (v) => {
    const parts = v.split(/[\s,]+/).filter((p) => p !== '');
    const nums = parts.map((p) => (/^\d{1,5}$/.test(p) ? Number(p) : NaN));
    return nums.length > 0 && nums.length <= 16 && nums.every((n) => n >= 1 && n <= 65535)
      ? { ok: true, value: [...new Set(nums)] }
      : { ok: false, reason: 'must be 1 to 16 port numbers (1-65535) separated by spaces, e.g. 443 80' };
  });
  return { hosts, ports };
}

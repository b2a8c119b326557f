// tier: lab
/**
 * The IPv6 gate scenarios of ipv6-gate.test.ts against a real nodogsplash 5.0.2 instead of openNDS: nodogsplash sets up
 * iptables for IPv4 alone, so on a dual-stack LAN only sluice's own table stands between an unpaid client and the
 * internet over IPv6. nodogsplash is not packaged in Debian: point SLUICE_E2E_NODOGSPLASH at a binary built locally
 * from its public source (ndsctl next to it); without it every scenario is a visible skip.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'nodogsplash';
await import('./ipv6-gate.test.ts');

// tier: lab
/**
 * The data scenarios of data.test.ts against a real nodogsplash 5.0.2 instead of openNDS (nodogsplash is
 * what OpenWrt 23.05/24.10 and TollGate run). nodogsplash is not packaged in Debian: point SLUICE_E2E_NODOGSPLASH at a
 * binary built locally from its public source (ndsctl next to it); without it every scenario is a visible skip.
 * The openNDS-only baseline (the portal's own quota) is skipped: nodogsplash's auth takes no limits.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'nodogsplash';
await import('./data.test.ts');

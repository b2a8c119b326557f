// tier: lab
/**
 * The resilience scenarios of resilience.test.ts (time session, kill -9, portal restart, unpaid client) against a real
 * nodogsplash 5.0.2: see nodogsplash-data.test.ts for SLUICE_E2E_NODOGSPLASH.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'nodogsplash';
await import('./resilience.test.ts');

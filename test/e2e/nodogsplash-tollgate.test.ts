// tier: lab
/**
 * The TollGate scenario of tollgate.test.ts against a real nodogsplash 5.0.2 instead of openNDS (the
 * door reachable before authentication through nodogsplash too, with its own users-to-router allowance, lab.sh
 * --allow-port). See nodogsplash-data.test.ts for SLUICE_E2E_NODOGSPLASH; without it the scenario is a visible skip.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'nodogsplash';
await import('./tollgate.test.ts');

// tier: lab
/**
 * The TollGate scenario of tollgate.test.ts with sluice as the gate (`main.portal 'sluice'`, no portal daemon): the
 * door is reachable before paying because the gate itself lets an unpaid device reach TollGate's port on the router
 * (src/portal/own-gate-nft.ts), with no users-to-router line for an operator to add; the token opens sluice's own gate.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'sluice';
await import('./tollgate.test.ts');

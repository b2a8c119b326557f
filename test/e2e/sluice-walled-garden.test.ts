// tier: lab
/**
 * The walled-garden scenarios of walled-garden.test.ts with sluice as the gate (`main.portal 'sluice'`, no portal
 * daemon): the garden's table marks a listed address's packets and the own gate lets them through as openNDS does; an
 * unlisted host gets the gate's 302 to the pay page instead of openNDS's 307.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'sluice';
await import('./walled-garden.test.ts');

// tier: lab; needs initdb mosquitto
/**
 * The roaming scenarios of venue.test.ts with sluice as the gate at `ra` (`main.portal 'sluice'`, no openNDS, no
 * ThemeSpec): back at `ra`, the device's captive probe alone is answered by sluice's own gate with its 302 to the pay
 * page, and that answer claims the session from the venue (src/http/own-routes.ts probeRedirect).
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'sluice';
await import('./venue.test.ts');

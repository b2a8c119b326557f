export { VENUE_MIGRATIONS } from './schema.ts';
export { parseVenues, VenueFileError } from './venues.ts';
export { startVenueService, VENUE_CONNECTIONS, type VenueService, type VenueServiceOptions } from './service.ts';

/**
 * Which routers make up which venue: the operator's file (`sluice-fleet --venues FILE`), one venue a line,
 * `<venue> <router> <router>…`, `#` comments. The fleet trusts this file, never a router's own claim: a router not
 * listed in a venue gets no lease of it.
 */
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export class VenueFileError extends Error {}

/** router → venue. A router listed in two venues is an error (its sessions would follow it into both). */
export function parseVenues(text: string): Map<string, string> {
  const venueOf = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [venue, ...routers] = line.split(/\s+/);
    if (venue === undefined || !NAME.test(venue) || routers.length === 0)
      throw new VenueFileError(`venues line ${i + 1}: expected "<venue> <router> <router>…"`);
    for (const router of routers) {
      if (!NAME.test(router))
        throw new VenueFileError(`venues line ${i + 1}: ${JSON.stringify(router)} is no router id`);
      const already = venueOf.get(router);
      if (already !== undefined && already !== venue)
        throw new VenueFileError(`venues line ${i + 1}: router ${router} is in venue ${already} already`);
      venueOf.set(router, venue);
    }
  });
  return venueOf;
}

/**
 * One spelling per mint, so a token's mint compares with the accepted list (and one mint is one balance): scheme and
 * host lower-case (URL does it), the default port dropped, no query or fragment, no trailing slash. A mint's path is
 * kept (some serve under one: https://host/cashu). null: not an http(s) URL with a host.
 */
export function normalizeMintUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return null;
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.hostname === '' ||
    url.username !== '' ||
    url.password !== ''
  )
    return null;
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

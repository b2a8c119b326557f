/**
 * The Settings page: every user's own time zone (blank: the fleet's), and for an admin where alerts go (alerts.md's
 * part of docs/fleet.md, "Alerts": the webhook and its secret, mail recipients). What is stored is shown back except
 * a secret, which shows only whether one is set.
 */
import { esc } from './html.ts';
import { alertSettingsForm, saveAlertSettings } from './alert-settings.ts';
import { InputError, setUserZone, type Login } from './auth.ts';
import type { Sql } from '../db/index.ts';
import { errorBox, okBox, type Page } from './pages.ts';
import type { ScreenContext } from './screens.ts';
import { checkTimeZone, TimeZoneError, zoneTime } from './zone.ts';

export async function settingsScreen(c: ScreenContext): Promise<Page> {
  const notes: string[] = [];
  const saved = c.query.get('saved');
  if (saved !== null) notes.push(okBox(saved));
  const err = c.query.get('error');
  if (err !== null) notes.push(errorBox(err));
  const hidden = `<input type="hidden" name="csrf" value="${esc(c.login.csrf)}">`;
  const zone =
    '<h2>Your time zone</h2>' +
    `<p class="note">Days, hours and times on every page and CSV are in ${esc(c.login.zone)} ` +
    `(now ${esc(zoneTime(c.now, c.login.zone))}). Blank: the fleet's (sluice-fleet --time-zone).</p>` +
    `<form method="post" action="/settings/time-zone">${hidden}` +
    `<label>IANA name <input name="zone" value="${esc(c.login.ownZone ?? '')}" placeholder="Europe/Berlin"></label> ` +
    '<button>Save</button></form>';
  const alerts =
    c.login.role === 'admin'
      ? await alertSettingsForm(c.db, c.login.csrf)
      : '<p class="note">Alerts: an admin sets where they go.</p>';
  return { title: 'Settings', sections: [...notes, zone, alerts] };
}

/** A Settings form's POST: what to say on the page after it (`saved`), or an InputError saying what is wrong. */
export async function saveSettings(
  { db, login, keepZone }: { db: Sql; login: Login; keepZone?: ((zone: string) => void) | undefined },
  what: string,
  body: URLSearchParams,
): Promise<string> {
  if (what === 'time-zone') {
    const name = (body.get('zone') ?? '').trim();
    try {
      await setUserZone(db, login.user, name === '' ? null : await checkTimeZone(db, name));
    } catch (err) {
      if (err instanceof TimeZoneError) throw new InputError(err.message);
      throw err;
    }
    // Its days summed in the background now, not in the first page view.
    if (name !== '') keepZone?.(name);
    return name === '' ? "your pages are in the fleet's time zone" : `your pages are in ${name}`;
  }
  if (what === 'alerts') {
    if (login.role !== 'admin') throw new InputError('read-only operators cannot change alerts: ask an admin');
    return saveAlertSettings(db, login.user, body);
  }
  throw new InputError(`no setting ${what}`);
}

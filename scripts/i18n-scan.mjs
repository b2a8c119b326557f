// Writes luci-app/po/templates/sluice.pot: every _('…') literal of the app's JavaScript, the menu titles, the ACL
// description and the cross-field rule reasons (LuCI's Settings shows them through _()), like LuCI's i18n-scan.pl.
// `node scripts/i18n-scan.mjs --check` exits 1 when the template is out of date (test/config/i18n.test.ts runs it).
// Translations: luci-app/po/<lang>/sluice.po (msgmerge them against the new template after running this).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const APP = new URL('../luci-app/', import.meta.url).pathname;
const POT = join(APP, 'po/templates/sluice.pot');

function files(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

/** A JavaScript single- or double-quoted literal's text. */
function unquoteJs(body) {
  return body.replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_, c) => {
    if (c[0] === 'u' || c[0] === 'x') return String.fromCharCode(parseInt(c.slice(1), 16));
    return { n: '\n', t: '\t', r: '\r' }[c] ?? c;
  });
}

/** msgid → first place it occurs, in order of appearance. */
export function scan() {
  const found = new Map();
  const add = (text, where) => {
    if (text !== '' && !found.has(text)) found.set(text, where);
  };
  for (const file of files(join(APP, 'htdocs'))) {
    const rel = relative(APP, file);
    const src = readFileSync(file, 'utf8');
    if (file.endsWith('.js')) {
      for (const m of src.matchAll(/(?<![\w$.])_\(\s*(?:'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)")\s*[,)]/g)) {
        add(unquoteJs(m[1] ?? m[2]), rel);
      }
    } else if (file.endsWith('rules.json')) {
      for (const rule of JSON.parse(src).rules) add(rule.reason, `${rel}:${rule.id}`);
    }
  }
  const menu = JSON.parse(readFileSync(join(APP, 'root/usr/share/luci/menu.d/luci-app-sluice.json'), 'utf8'));
  for (const entry of Object.values(menu)) add(entry.title, 'root/usr/share/luci/menu.d/luci-app-sluice.json');
  const acl = JSON.parse(readFileSync(join(APP, 'root/usr/share/rpcd/acl.d/luci-app-sluice.json'), 'utf8'));
  for (const entry of Object.values(acl)) add(entry.description, 'root/usr/share/rpcd/acl.d/luci-app-sluice.json');
  return found;
}

export function poString(text) {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

export function renderPot(found) {
  let out = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8"\n';
  for (const [text, where] of found) out += `\n#: ${where}\nmsgid ${poString(text)}\nmsgstr ""\n`;
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const pot = renderPot(scan());
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(POT, 'utf8');
    } catch {
      /* missing */
    }
    if (current !== pot) {
      console.error('luci-app/po/templates/sluice.pot is out of date: run node scripts/i18n-scan.mjs');
      process.exit(1);
    }
  } else {
    writeFileSync(POT, pot);
    console.log(`${POT}: ${pot.split('\nmsgid ').length - 2} strings`);
  }
}

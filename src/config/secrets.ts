/**
 * The secrets' own UCI file, `/etc/config/sluice_secrets` (mode 0600): rpcd's uci ACL is per file, so keys kept in
 * /etc/config/sluice could be read by any LuCI user allowed to read the settings. The secrets file has its own ACL
 * (luci-app-sluice's write role only) and is merged into the main package before validation, section by section:
 * `config radius 'radius'` / `option secret …` there is `radius.secret`. Pure.
 */
import type { ConfigProblem } from './reader.ts';
import { sectionsOfType, type UciPackage, type UciSection } from './uci.ts';

/** Every secret sluice reads, by section type; the only options the secrets file may hold. */
export const SECRET_OPTIONS = {
  radius: ['secret', 'das_secret'],
  mqtt: ['password', 'command_secret'],
  hook: ['secret'],
  http: ['pcsync_secret'],
} as const satisfies Record<string, readonly string[]>;

/** `/etc/config/sluice` → `/etc/config/sluice_secrets`: the UCI package `<name>_secrets` beside the main one. */
export function secretsPathFor(configPath: string): string {
  return `${configPath}_secrets`;
}

export interface MergedSecrets {
  pkg: UciPackage;
  /** Options or sections of the secrets file that are not secrets: not read (effect `ignored`). */
  problems: ConfigProblem[];
  /** `section.option` of secrets set in the main file and not in the secrets file: used, but readable by more users. */
  exposed: string[];
}

/** The section a loader reads for a singleton type: the one named after it, else the first of its type. */
function singleton(pkg: UciPackage, type: string): UciSection | undefined {
  return pkg.sections.find((s) => s.name === type && s.type === type) ?? sectionsOfType(pkg, type)[0];
}

/**
 * The main package with the secrets file's values in place: a secret set (non-empty) in the secrets file wins; one
 * set only in the main file is kept (an install the upgrade has not migrated must not lose it) and listed in `exposed`.
 */
export function mergeSecrets(main: UciPackage, secrets: UciPackage | undefined): MergedSecrets {
  const problems: ConfigProblem[] = [];
  const sections = main.sections.map((s) => ({ ...s, options: new Map(s.options) }));
  const pkg: UciPackage = { ...main, sections };
  const fromFile = new Map<string, string>();
  for (const s of secrets?.sections ?? []) {
    const allowed: readonly string[] | undefined = (SECRET_OPTIONS as Record<string, readonly string[]>)[s.type];
    for (const [option, value] of s.options) {
      if (allowed === undefined || !allowed.includes(option) || s !== singleton(secrets!, s.type)) {
        problems.push({
          path: `sluice_secrets.${s.name}.${option}`,
          section: s.name,
          option,
          reason: `is not a secret sluice reads (sluice_secrets holds ${Object.entries(SECRET_OPTIONS)
            .map(([t, o]) => `${t}.${o.join(`, ${t}.`)}`)
            .join(', ')}): set it in /etc/config/sluice`,
          effect: 'ignored',
        });
      } else if (typeof value === 'string' && value !== '') fromFile.set(`${s.type}.${option}`, value);
    }
  }
  const exposed: string[] = [];
  for (const [type, options] of Object.entries(SECRET_OPTIONS)) {
    let section = singleton(pkg, type);
    for (const option of options) {
      const secret = fromFile.get(`${type}.${option}`);
      if (secret === undefined) {
        const inMain = section?.options.get(option);
        if (inMain !== undefined && inMain !== '') exposed.push(`${type}.${option}`);
        continue;
      }
      if (section === undefined) {
        // A secret for a section the main file lacks (its defaults apply): the section, so that the value is read.
        section = { type, name: type, anonymous: false, index: sectionsOfType(pkg, type).length, options: new Map() };
        sections.push(section);
      }
      section.options.set(option, secret);
    }
  }
  return { pkg, problems, exposed };
}

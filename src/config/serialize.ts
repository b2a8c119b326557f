/**
 * Canonical UCI text, byte for byte what `uci commit` / `uci export` (without the package header) write:
 * a blank line before each `config <type> '<name>'` (the name omitted for anonymous sections, so libuci
 * regenerates it), tab-indented `option`/`list` lines, every value single-quoted with `'` written as `'\''`,
 * and a final newline. Pure.
 */
import { SluiceError } from '../errors.ts';
import { isValidUciName, isValidUciType, type UciPackage } from './uci.ts';

/** libuci uci_escape: close the quote, an escaped quote, reopen. */
export function quoteUci(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function invalid(message: string): never {
  throw new SluiceError('ERR_UCI_INVALID', message);
}

export function serializeUci(pkg: Pick<UciPackage, 'sections'>): string {
  let out = '';
  for (const section of pkg.sections) {
    if (!isValidUciType(section.type)) invalid(`invalid section type ${JSON.stringify(section.type)}`);
    if (!section.anonymous && !isValidUciName(section.name))
      invalid(`invalid section name ${JSON.stringify(section.name)}`);
    out += `\nconfig ${section.type}${section.anonymous ? '' : ` '${section.name}'`}\n`;
    for (const [name, value] of section.options) {
      if (!isValidUciName(name)) invalid(`invalid option name ${JSON.stringify(name)} in section ${section.name}`);
      const items = typeof value === 'string' ? [value] : value;
      for (const item of items) {
        if (item.includes('\0')) invalid(`NUL byte in ${section.name}.${name}`);
        out += `\t${typeof value === 'string' ? 'option' : 'list'} ${name} ${quoteUci(item)}\n`;
      }
    }
  }
  return `${out}\n`;
}

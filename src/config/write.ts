/** Writes a UCI package to disk the way `uci commit` does: canonical text, atomically replaced. */
import { writeFileAtomic, type WriteFileAtomicOptions } from '../storage/index.ts';
import { serializeUci } from './serialize.ts';
import type { UciPackage } from './uci.ts';

export async function writeUci(
  path: string,
  pkg: Pick<UciPackage, 'sections'>,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  await writeFileAtomic(path, serializeUci(pkg), options);
}

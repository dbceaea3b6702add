// A zip archive of a few files in memory, with fixed timestamps so the same bundle always gives the same bytes (fflate: small, no dependencies).
import { zipSync } from 'fflate';

const EPOCH = new Date('2020-01-01T00:00:00Z');

export function zipFiles(files: Record<string, Uint8Array>): Uint8Array {
  const entries: Record<string, [Uint8Array, { mtime: Date; level: 9 }]> = {};
  for (const [path, data] of Object.entries(files)) entries[path] = [data, { mtime: EPOCH, level: 9 }];
  return zipSync(entries);
}

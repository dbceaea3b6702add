// Conveyor's version, read from the package.json of whatever is running: the repository (cli/ and cli/*/ are below it)
// or the installed kube-conveyor package (its bundled dist/ is one level below it).
import { existsSync, readFileSync } from 'node:fs';

export function conveyorVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    const file = new URL(up, import.meta.url);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if ((pkg.name === 'kube-conveyor' || pkg.name === 'conveyor') && pkg.version !== undefined) return pkg.version;
  }
  throw new Error('cannot find the package.json of Conveyor beside this module');
}

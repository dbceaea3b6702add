// Loads a user's controller modules (each default export a defineController result, or an array of them) and checks them, naming the file in every error.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type Controller,
  checkControllers,
  errorMessage,
  InvalidArgumentError,
  type KubeObject,
  uniqueControllers,
} from '@conveyor/shared';

/** Imports `path` (relative to `cwd`) and returns its one controller; a module exporting several is refused, naming them. */
export async function loadController(path: string, cwd = process.cwd()): Promise<Controller<KubeObject, unknown>> {
  const controllers = await loadModule(path, cwd);
  if (controllers.length > 1) {
    throw new InvalidArgumentError(
      `controller module ${path} exports ${controllers.length} controllers (${controllers.map((c) => c.name).join(', ')}); this needs one`,
    );
  }
  return controllers[0] as Controller<KubeObject, unknown>;
}

/**
 * Every controller of the modules `paths` name, in order: each module's default export (or `controller` export),
 * one controller or an array of them. Two controllers of the same name are refused.
 */
export async function loadControllers(paths: string | readonly string[], cwd = process.cwd()): Promise<Controller<KubeObject, unknown>[]> {
  const loaded: Controller<KubeObject, unknown>[] = [];
  for (const path of typeof paths === 'string' ? [paths] : paths) loaded.push(...(await loadModule(path, cwd)));
  return uniqueControllers(loaded);
}

async function loadModule(path: string, cwd: string): Promise<Controller<KubeObject, unknown>[]> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  if (!existsSync(file)) throw new InvalidArgumentError(`controller module ${path} does not exist (looked at ${file})`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const where = whereInSource(error);
    const what = error instanceof SyntaxError ? 'syntax error' : error instanceof Error ? error.name : 'error';
    throw new InvalidArgumentError(
      `controller module ${path} failed to load: ${what}${where === undefined ? '' : ` at ${where}`}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  const exported = module.default ?? module.controller;
  if (exported === undefined) {
    throw new InvalidArgumentError(`controller module ${path} has no default export; export default defineController({...})`);
  }
  try {
    return checkControllers(exported);
  } catch (error) {
    throw new InvalidArgumentError(`controller module ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Where in the user's code a module failed: `file:line:column`. A syntax error carries it in the
 * first lines of its stack (`/path/controller.ts:4`, the source, a caret under the column); an error
 * thrown while the module ran, in its first stack frame outside Node and node_modules.
 */
function whereInSource(error: unknown): string | undefined {
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  const lines = stack.split('\n');
  const header = /^((?:file:\/\/)?\/\S*?):(\d+)$/.exec(lines[0] ?? '');
  if (header !== null) {
    const caret = lines.findIndex((line, i) => i > 0 && /^\s*\^+\s*$/.test(line));
    const column = caret === -1 ? undefined : (lines[caret]?.indexOf('^') ?? 0) + 1;
    return `${displayPath(header[1] as string)}:${header[2]}${column === undefined ? '' : `:${column}`}`;
  }
  for (const line of lines.slice(1)) {
    const frame = /(?:\(|^at )((?:file:\/\/)?\/[^():\s]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (frame !== null && !frame[1]?.includes('/node_modules/')) return `${displayPath(frame[1] as string)}:${frame[2]}:${frame[3]}`;
  }
  return undefined;
}

function displayPath(path: string): string {
  return path.startsWith('file://') ? fileURLToPath(path) : path;
}

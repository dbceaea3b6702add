// Loads a user's controller module (its default export, made with defineController) and checks it, naming the file in every error.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Controller, checkController, InvalidArgumentError, type KubeObject } from '@conveyor/shared';

/** Imports `path` (relative to `cwd`) and returns its checked default export (or its `controller` export). */
export async function loadController(path: string, cwd = process.cwd()): Promise<Controller<KubeObject, unknown>> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  if (!existsSync(file)) throw new InvalidArgumentError(`controller module ${path} does not exist (looked at ${file})`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidArgumentError(`controller module ${path} failed to load: ${(error as Error).message}`, { cause: error });
  }
  const exported = module.default ?? module.controller;
  if (exported === undefined) {
    throw new InvalidArgumentError(`controller module ${path} has no default export; export default defineController({...})`);
  }
  try {
    return checkController(exported);
  } catch (error) {
    throw new InvalidArgumentError(`controller module ${path}: ${(error as Error).message}`, { cause: error });
  }
}

// `npm run build:widgets` from code: its options as package.json's script gives them, and the Widget bundles it writes (not the manifests).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadController } from '@conveyor/workers/load-controller';
import { type BuildOptions, parseBuildArgs, writeArtifacts } from '../../cli/build/build-command.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The options of the `build:widgets` script, paths relative to the repository root. */
export function widgetBuildOptions(): BuildOptions {
  const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { scripts: Record<string, string> };
  const words = (pkg.scripts['build:widgets'] ?? '').split(/\s+/);
  return parseBuildArgs(words.slice(words.indexOf('build') + 1), { out: () => {}, err: () => {}, env: {} });
}

/** Writes dist/widgets/bundle.mjs, the Lambda handler and zip that serverless.yml packages, without touching infra/. */
export async function buildWidgetArtifacts(): Promise<BuildOptions> {
  const relative = widgetBuildOptions();
  const options = {
    ...relative,
    controllerModule: `${repoRoot}${relative.controllerModule}`,
    controllerModules: relative.controllerModules.map((module) => `${repoRoot}${module}`),
    out: `${repoRoot}${relative.out}`,
  };
  await writeArtifacts(await loadController(options.controllerModule), { ...options, serverless: `${repoRoot}${relative.serverless}` });
  return relative;
}

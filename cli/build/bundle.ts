// The two bundles `conveyor build` makes with esbuild: Conveyor's runtime commands with the user's controller built in
// (`node bundle.mjs watch|worker|dispatch …`), and the Lambda handler; each one file that needs no node_modules.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Where the runtime and Lambda entry modules are. In the package this code runs from dist/ beside the built
 * runtime.js and lambda.js; in the repository from cli/build/, where the package's TypeScript sources are.
 */
export function entryModules(): { runtime: string; lambda: string } {
  const built = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (existsSync(built('runtime')) && existsSync(built('lambda'))) return { runtime: built('runtime'), lambda: built('lambda') };
  const source = (name: string) => fileURLToPath(new URL(`../../package/src/${name}.ts`, import.meta.url));
  return { runtime: source('runtime'), lambda: source('lambda') };
}

// ESM bundles need a require() for the CommonJS inside some dependencies (ioredis, client-node's).
const REQUIRE_SHIM =
  "import { createRequire as __conveyorCreateRequire } from 'node:module'; const require = __conveyorCreateRequire(import.meta.url);";

async function bundle(source: string, resolveDir: string, outfile: string): Promise<void> {
  await build({
    stdin: { contents: source, resolveDir, sourcefile: 'conveyor-entry.mjs', loader: 'js' },
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    banner: { js: REQUIRE_SHIM },
    // Whitespace and syntax only: identifiers stay, so stack traces from a pod still name functions and classes.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
}

const spec = (path: string) => JSON.stringify(path);

/** `import * as controllerModule0 from "…"; …` for each module, and the list of their names. */
function importModules(controllerModules: readonly string[]): { imports: string[]; list: string } {
  const imports = controllerModules.map((path, i) => `import * as controllerModule${i} from ${spec(resolve(path))};`);
  return { imports, list: `[${controllerModules.map((_, i) => `controllerModule${i}`).join(', ')}]` };
}

/** `outfile`: `node outfile <command>` runs Conveyor's runtime commands with the controller modules built in. */
export async function bundleRuntime(controllerModules: readonly string[], outfile: string, version: string): Promise<void> {
  const { imports, list } = importModules(controllerModules);
  const source = [
    ...imports,
    `import { runBundled } from ${spec(entryModules().runtime)};`,
    `process.exitCode = await runBundled(process.argv.slice(2), ${list}, ${JSON.stringify(version)});`,
  ].join('\n');
  await bundle(source, process.cwd(), outfile);
}

/** `outfile` exports `handler`: the controllers' reconciles as one AWS Lambda function (each request names its controller). */
export async function bundleLambda(controllerModules: readonly string[], outfile: string): Promise<void> {
  const { imports, list } = importModules(controllerModules);
  const source = [
    ...imports,
    `import { lambdaHandler } from ${spec(entryModules().lambda)};`,
    `export const handler = lambdaHandler(${list}.flatMap((m) => m.default ?? m.controller));`,
  ].join('\n');
  await bundle(source, process.cwd(), outfile);
}

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

/** `outfile`: `node outfile <command>` runs Conveyor's runtime commands with `controllerModule` built in. */
export async function bundleRuntime(controllerModule: string, outfile: string, version: string): Promise<void> {
  const controller = resolve(controllerModule);
  const source = [
    `import * as controllerModule from ${spec(controller)};`,
    `import { runBundled } from ${spec(entryModules().runtime)};`,
    `process.exitCode = await runBundled(process.argv.slice(2), controllerModule, ${JSON.stringify(version)});`,
  ].join('\n');
  await bundle(source, process.cwd(), outfile);
}

/** `outfile` exports `handler`: the controller's reconcile as an AWS Lambda function. */
export async function bundleLambda(controllerModule: string, outfile: string): Promise<void> {
  const controller = resolve(controllerModule);
  const source = [
    `import * as controllerModule from ${spec(controller)};`,
    `import { lambdaHandler } from ${spec(entryModules().lambda)};`,
    'export const handler = lambdaHandler(controllerModule.default ?? controllerModule.controller);',
  ].join('\n');
  await bundle(source, process.cwd(), outfile);
}

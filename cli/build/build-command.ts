// `conveyor build`: from a controller module, everything needed to run it elsewhere — the bundle and its Dockerfile, the
// kustomize manifests with RBAC derived from the controller, and the Lambda package with its serverless.yml.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { COMMON_FLAGS, type Command, EXIT, type Flags, type Io, loadConfigOrThrow, parseFlags, UsageError } from '../command.ts';
import { conveyorVersion } from '../conveyor-version.ts';
import {
  BUNDLE_FILE,
  deploymentName,
  dockerfile,
  dockerignore,
  LAMBDA_HANDLER_FILE,
  LAMBDA_ZIP_FILE,
  type Served,
  serverlessYml,
  zipEntryPath,
} from './deploy-files.ts';
import { imageName, manifestFiles } from './manifests.ts';

export interface BuildOptions {
  /** The first controller module (the only one, usually). */
  controllerModule: string;
  /** Every controller module (`--controller` given more than once, or a list in `controller:`): one deployment serves them all. */
  controllerModules: readonly string[];
  /** Bundles, Dockerfile, zip. @defaultValue dist */
  out: string;
  /** @defaultValue <out>/manifests */
  manifests: string;
  /** @defaultValue <out>/serverless.yml */
  serverless: string;
  /** @defaultValue conveyor-<controller>:latest */
  image: string | undefined;
  namespace: string;
  shards: number;
  region: string;
  /** @defaultValue conveyor-<controller>-prod-reconcile (serverless.yml's service, stage and function) */
  functionName: string | undefined;
}

const FLAGS = {
  controller: { ...COMMON_FLAGS.controllers, defaultText: 'controller in conveyor.yaml' },
  config: { ...COMMON_FLAGS.config, defaultText: 'conveyor.yaml when there is one' },
  out: { type: 'string', short: 'o', value: '<dir>', description: 'where the bundle, Dockerfile and Lambda zip go', defaultText: 'dist' },
  manifests: { type: 'string', value: '<dir>', description: 'where the kustomize manifests go', defaultText: '<out>/manifests' },
  serverless: { type: 'string', value: '<file>', description: 'where the Lambda serverless.yml goes', defaultText: '<out>/serverless.yml' },
  image: {
    type: 'string',
    value: '<ref>',
    description: 'the image the manifests run',
    defaultText: '<image name of the controller>:latest',
  },
  namespace: { type: 'string', value: '<ns>', description: 'the namespace the manifests install into', defaultText: 'conveyor-system' },
  shards: { type: 'string', value: '<n>', description: 'watcher replicas of the sharded overlay (2 to 64)', defaultText: '2' },
  region: { type: 'string', value: '<aws-region>', description: 'the Lambda function’s AWS region', defaultText: 'us-east-1' },
  function: {
    type: 'string',
    value: '<name>',
    description: 'the Lambda function’s name',
    defaultText: 'conveyor-<controller>-prod-reconcile',
  },
} as const satisfies Flags;

/** The options from the flags; the controller from `--controller`, or `controller:` of `--config` (./conveyor.yaml when it exists). */
export function parseBuildArgs(args: string[], io: Io): BuildOptions {
  const { values } = parseFlags(args, FLAGS);
  let modules: string | readonly string[] | undefined = values.controller;
  const configFile = values.config ?? (existsSync('conveyor.yaml') ? 'conveyor.yaml' : undefined);
  if (modules === undefined && configFile !== undefined) modules = loadConfigOrThrow(configFile, io).controller;
  const controllerModules = typeof modules === 'string' ? [modules] : (modules ?? []);
  const [controllerModule] = controllerModules;
  if (controllerModule === undefined) throw new UsageError('--controller <module> is required (or set controller in conveyor.yaml)');
  const shards = Number(values.shards ?? '2');
  if (!Number.isInteger(shards) || shards < 2 || shards > 64)
    throw new UsageError(`--shards must be a whole number from 2 to 64, got "${values.shards}"`);
  const namespace = values.namespace ?? 'conveyor-system';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)
    throw new UsageError(`--namespace must be a DNS label such as conveyor-system, got "${namespace}"`);
  const out = values.out ?? 'dist';
  return {
    controllerModule,
    controllerModules,
    out,
    manifests: values.manifests ?? join(out, 'manifests'),
    serverless: values.serverless ?? join(out, 'serverless.yml'),
    image: values.image,
    namespace,
    shards,
    region: values.region ?? 'us-east-1',
    functionName: values.function,
  };
}

/**
 * Every text file the build writes, by path relative to the working directory: Dockerfile, .dockerignore, manifests, serverless.yml.
 * Several controllers share them: one image, one watcher, one worker Deployment and one function, RBAC the union of theirs.
 */
export function plannedTextFiles(controller: Served, o: BuildOptions): Map<string, string> {
  const files = new Map<string, string>();
  files.set(join(o.out, 'Dockerfile'), dockerfile(controller));
  files.set(join(o.out, '.dockerignore'), dockerignore());
  const manifests = manifestFiles({
    controller,
    image: o.image ?? `${imageName(controller)}:latest`,
    namespace: o.namespace,
    shards: o.shards,
    functionName: o.functionName ?? `conveyor-${deploymentName(controller)}-prod-reconcile`,
    region: o.region,
  });
  for (const [path, text] of Object.entries(manifests)) files.set(join(o.manifests, path), text);
  files.set(o.serverless, serverlessYml(serverlessOptions(controller, o)));
  return files;
}

function serverlessOptions(controller: Served, o: BuildOptions) {
  return { controller, outFromServerless: relative(dirname(resolve(o.serverless)), resolve(o.out)), region: o.region };
}

/** Writes the bundle, the Lambda handler and its zip into `o.out`: what the Dockerfile and serverless.yml package. */
export async function writeArtifacts(controller: Served, o: BuildOptions): Promise<void> {
  const { bundleLambda, bundleRuntime } = await import('./bundle.ts');
  const { zipFiles } = await import('./zip.ts');
  mkdirSync(join(o.out, 'lambda'), { recursive: true });
  await bundleRuntime(o.controllerModules, join(o.out, BUNDLE_FILE), conveyorVersion());
  await bundleLambda(o.controllerModules, join(o.out, LAMBDA_HANDLER_FILE));
  const entry = zipEntryPath(serverlessOptions(controller, o));
  writeFileSync(join(o.out, LAMBDA_ZIP_FILE), zipFiles({ [entry]: readFileSync(join(o.out, LAMBDA_HANDLER_FILE)) }));
}

/** Writes the artifacts and every planned text file; the generated manifest directories are replaced whole. */
export async function runBuild(o: BuildOptions, io: Io): Promise<void> {
  const { loadControllers } = await import('@conveyor/workers/load-controller');
  const controllers = await loadControllers(o.controllerModules);
  const controller: Served = controllers.length === 1 ? (controllers[0] as Served) : controllers;
  await writeArtifacts(controller, o);
  // Files a previous build generated and this one does not (an overlay renamed) must not linger; these directories are ours.
  for (const generated of ['base', 'workers', 'components', 'overlays'])
    rmSync(join(o.manifests, generated), { recursive: true, force: true });
  for (const [path, text] of plannedTextFiles(controller, o)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  io.out(
    `conveyor build: ${controllers.map((c) => c.name).join(', ')} → ${o.out}/${BUNDLE_FILE} (node ${BUNDLE_FILE} watch|worker|dispatch), Dockerfile, ${o.out}/${LAMBDA_ZIP_FILE}`,
  );
  io.out(`conveyor build: manifests in ${o.manifests} (overlays containers, containers-keda, lambda, sharded); ${o.serverless}`);
}

export const buildCommand: Command = {
  name: 'build',
  summary: 'bundle a controller with Conveyor; write its Dockerfile, kustomize manifests with RBAC, Lambda zip and serverless.yml',
  usage:
    'conveyor build [--controller <module>] [--config <file>] [--out <dir>] [--manifests <dir>] [--serverless <file>] [--image <ref>] [--namespace <ns>] [--shards <n>] [--region <aws-region>] [--function <name>]',
  flags: FLAGS,
  async run(args, io) {
    await runBuild(parseBuildArgs(args, io), io);
    return EXIT.ok;
  },
};

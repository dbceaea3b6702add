// The files of a new controller project (`conveyor init`): what each holds, from the resource the user names.
//
// The project depends on kube-conveyor only; its test reconciles through kube-conveyor/testing, and its README's
// two commands (`npm install && npm test`, `npx conveyor build`) are what the end-to-end test runs.

export interface ProjectSpec {
  /** npm package name of the project (the directory's name). */
  name: string;
  group: string;
  version: string;
  kind: string;
  plural: string;
  /** Version range of kube-conveyor to depend on. */
  conveyorVersion: string;
}

/** The TypeScript the generated project typechecks with: the release this repository's own sources and declarations are checked with. */
export const TYPESCRIPT_RANGE = '^7.0.2';
export const TYPES_NODE_RANGE = '^24.0.0';

export function projectFiles(p: ProjectSpec): Record<string, string> {
  return {
    'package.json': `${JSON.stringify(packageJson(p), null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(TSCONFIG, null, 2)}\n`,
    'controller.ts': controllerTs(p),
    'controller.test.ts': controllerTestTs(p),
    'crd.yaml': crdYaml(p),
    'example.yaml': exampleYaml(p),
    'conveyor.yaml': conveyorYaml(p),
    'README.md': readme(p),
    '.gitignore': 'node_modules/\ndist/\n',
  };
}

function packageJson(p: ProjectSpec) {
  return {
    name: p.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    engines: { node: '>=22.19.0' },
    scripts: {
      test: 'tsc && node --test controller.test.ts',
      build: 'conveyor build',
    },
    dependencies: { 'kube-conveyor': p.conveyorVersion },
    devDependencies: { '@types/node': TYPES_NODE_RANGE, typescript: TYPESCRIPT_RANGE },
  };
}

const TSCONFIG = {
  compilerOptions: {
    target: 'es2024',
    lib: ['es2024'],
    module: 'nodenext',
    moduleResolution: 'nodenext',
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    erasableSyntaxOnly: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  },
  include: ['*.ts'],
};

const lower = (p: ProjectSpec) => p.kind.toLowerCase();

function controllerTs(p: ProjectSpec): string {
  return `// The ${p.kind} controller: keeps one ConfigMap per ${p.kind} holding its spec.message, reports it in status,
// and removes it through a finalizer when the ${p.kind} is deleted.
import { type Condition, defineController, type KubeObject, setCondition, TerminalError } from 'kube-conveyor';

export interface ${p.kind} extends KubeObject {
  spec?: { message?: string };
  status?: { observedGeneration?: number; configMap?: string; conditions?: Condition[] };
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export const ${p.plural.toUpperCase().replace(/[^A-Z0-9]/g, '_')} = { group: '${p.group}', version: '${p.version}', plural: '${p.plural}' };
const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };

/** The ConfigMap a ${p.kind} owns. */
export function childName(name: string): string {
  return \`\${name}-${lower(p)}\`;
}

export default defineController<${p.kind}>({
  name: '${p.plural}',
  for: { group: '${p.group}', version: '${p.version}', plural: '${p.plural}', kind: '${p.kind}' },
  // An edit or delete of an owned ConfigMap reconciles the ${p.kind} that controls it.
  owns: [{ ...CONFIGMAPS, kind: 'ConfigMap' }],
  finalizer: '${p.group}/cleanup',

  async reconcile(object, ctx) {
    const { name, namespace = 'default', generation = 0 } = object.metadata;
    const message = object.spec?.message;
    // Retrying cannot fix a missing message: the request is parked with this reason (conveyor status shows it).
    if (message === undefined || message === '') throw new TerminalError('spec.message is required');
    const child = { ...CONFIGMAPS, namespace, name: childName(name) };
    const existing = await ctx.client.find<ConfigMap>(child);
    if (existing === undefined) {
      // ctx.own: a controller ownerReference to this ${p.kind}, so the ConfigMap goes when it does.
      await ctx.client.create<ConfigMap>(
        CONFIGMAPS,
        ctx.own({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: child.name, namespace }, data: { message } }),
      );
      // An Event about the ${p.kind}: \`kubectl describe\` and \`kubectl events\` show it.
      ctx.events.normal('ConfigMapCreated', \`created ConfigMap \${child.name}\`);
    } else if (existing.data?.message !== message) {
      // Guarded by the resourceVersion read: a stale write fails with 409 and the request is retried.
      await ctx.client.patch(child, {
        type: 'merge',
        body: { metadata: { resourceVersion: existing.metadata.resourceVersion }, data: { message } },
      });
    }
    // Collected and written once after reconcile returns, and only when it changes something.
    ctx.patchStatus({
      observedGeneration: generation,
      configMap: child.name,
      conditions: setCondition(object.status?.conditions, {
        type: 'Ready',
        status: 'True',
        reason: 'ConfigMapReady',
        message: \`ConfigMap \${child.name} holds the message\`,
        observedGeneration: generation,
      }),
    });
  },

  // Runs once the ${p.kind} is being deleted; the finalizer is removed only after it resolves. It stands in for
  // cleaning up what lives outside Kubernetes (the owned ConfigMap would also go by garbage collection).
  async finalize(object, ctx) {
    const { name, namespace = 'default' } = object.metadata;
    await ctx.client.delete({ ...CONFIGMAPS, namespace, name: childName(name) });
  },
});
`;
}

function controllerTestTs(p: ProjectSpec): string {
  const constant = p.plural.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  // In the order Biome (and most import sorters) keep named imports: case-insensitively.
  const named = [constant, 'childName'].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())).join(', ');
  return `// The ${p.kind} controller against the Kubernetes API simulator and a private Redis (kube-conveyor/testing; needs redis-server).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startTestEnv, type TestEnv } from 'kube-conveyor/testing';
import controller, { ${named}, type ${p.kind} } from './controller.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv({ controller, crds: [new URL('./crd.yaml', import.meta.url)] });
});
after(async () => {
  await env?.close();
});

const key = { ...${constant}, namespace: 'default', name: 'hello' };
const child = { group: '', version: 'v1', plural: 'configmaps', namespace: 'default', name: childName('hello') };

it('reconciles a new ${p.kind}: its ConfigMap holds the message and it reports Ready', async () => {
  await env.client.create<${p.kind}>(${constant}, {
    apiVersion: '${p.group}/${p.version}',
    kind: '${p.kind}',
    metadata: { name: 'hello', namespace: 'default' },
    spec: { message: 'Hello, world' },
  });
  await env.waitFor('the ${p.kind} reconciled', async () => (await env.client.get<${p.kind}>(key)).status?.observedGeneration === 1);
  const object = await env.client.get<${p.kind}>(key);
  assert.equal(object.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const configMap = await env.client.get<{ data?: Record<string, string> }>(child);
  assert.equal(configMap.data?.message, 'Hello, world');
});

it('removes the ConfigMap through the finalizer when the ${p.kind} is deleted', async () => {
  await env.client.delete(key);
  await env.waitFor('the ${p.kind} gone', async () => (await env.client.find(key)) === undefined);
  assert.equal(await env.client.find(child), undefined);
});
`;
}

function crdYaml(p: ProjectSpec): string {
  return `# The ${p.kind} custom resource: spec.message, which the controller copies into a ConfigMap, and a status it reports.
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${p.plural}.${p.group}
spec:
  group: ${p.group}
  scope: Namespaced
  names:
    plural: ${p.plural}
    singular: ${lower(p)}
    kind: ${p.kind}
    listKind: ${p.kind}List
  versions:
    - name: ${p.version}
      served: true
      storage: true
      # Status through its own subresource: status writes do not bump metadata.generation, so they do not wake the controller.
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: Ready
          type: string
          jsonPath: .status.conditions[?(@.type=="Ready")].status
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                message:
                  type: string
            status:
              type: object
              properties:
                observedGeneration:
                  type: integer
                configMap:
                  type: string
                conditions:
                  type: array
                  items:
                    type: object
                    required: [type, status, lastTransitionTime, reason, message]
                    properties:
                      type: { type: string }
                      status: { type: string, enum: ['True', 'False', 'Unknown'] }
                      reason: { type: string }
                      message: { type: string }
                      observedGeneration: { type: integer }
                      lastTransitionTime: { type: string, format: date-time }
`;
}

function exampleYaml(p: ProjectSpec): string {
  return `# A ${p.kind} to try the controller with: kubectl apply -f example.yaml
apiVersion: ${p.group}/${p.version}
kind: ${p.kind}
metadata:
  name: hello
  namespace: default
spec:
  message: Hello, world
`;
}

function conveyorYaml(p: ProjectSpec): string {
  return `# Settings for running the ${p.kind} controller on this machine (schema and defaults: \`npx conveyor config --config conveyor.yaml\`).
# \`npx conveyor build\` reads \`controller\` from here; the manifests it writes carry their own in-cluster settings.
controller: ./controller.ts
redis:
  url: redis://127.0.0.1:6380
kube:
  # Written by \`npx conveyor sim --tls --kubeconfig-out sim.kubeconfig\`; point it at a real cluster's kubeconfig instead.
  kubeconfig: ./sim.kubeconfig
http:
  port: 8081
`;
}

function readme(p: ProjectSpec): string {
  return `# ${p.name}

A Kubernetes controller for \`${p.kind}\` (\`${p.plural}.${p.group}\`), run by [Conveyor](https://www.npmjs.com/package/kube-conveyor):
a watcher enqueues changes into Redis and workers (containers or AWS Lambda) reconcile them.

\`\`\`sh
npm install && npm test
npx conveyor build
\`\`\`

\`npm test\` typechecks and reconciles a ${p.kind} through the Kubernetes API simulator and a private Redis
(it needs \`redis-server\` 7.0 or later on PATH). \`npx conveyor build\` writes \`dist/\`: \`bundle.mjs\` (run it with
\`node dist/bundle.mjs watch|worker|dispatch\`), a \`Dockerfile\`, kustomize manifests (\`dist/manifests\`,
with RBAC for exactly what the controller touches), and the Lambda package with its \`serverless.yml\`.

| file | what |
| --- | --- |
| \`controller.ts\` | the controller: what it watches, \`reconcile\` and \`finalize\` |
| \`controller.test.ts\` | its test against the simulator |
| \`crd.yaml\` | the ${p.kind} CustomResourceDefinition |
| \`example.yaml\` | a ${p.kind} to apply |
| \`conveyor.yaml\` | settings for running it on this machine (\`npx conveyor watch\`, \`npx conveyor worker\`) |
`;
}

// The text files `conveyor build` writes besides the bundles: the Dockerfile and .dockerignore for the bundle, and the
// serverless.yml that deploys the Lambda package. Pure functions of the options, so a test can compare them with what is checked in.
import type { ControllerSpec } from '@conveyor/shared';

/** What one build serves: a controller, or several in one deployment (one watcher, one worker Deployment, one function). */
export type Served = ControllerSpec | readonly ControllerSpec[];

/** The controllers a build serves, as a list. */
export function servedControllers(served: Served): readonly ControllerSpec[] {
  return Array.isArray(served) ? served : [served as ControllerSpec];
}

/** The name of what a build deploys: the controller's, or the controllers' joined by `-` (`widgets-gadgets`). */
export function deploymentName(served: Served): string {
  return servedControllers(served)
    .map((c) => c.name)
    .join('-');
}

/** Whose the generated files are: `The widgets controller's`, `The widgets and gadgets controllers'`. */
function whose(served: Served): string {
  const names = servedControllers(served).map((c) => c.name);
  return names.length === 1 ? `The ${names[0]} controller's` : `The ${names.slice(0, -1).join(', ')} and ${names.at(-1)} controllers'`;
}

export const BUNDLE_FILE = 'bundle.mjs';
export const LAMBDA_HANDLER_FILE = 'lambda/handler.mjs';
export const LAMBDA_ZIP_FILE = 'lambda.zip';

/** The image holds the bundle only: Node's official slim image, a non-root user, the bundle as the entrypoint. */
export function dockerfile(controller: Served): string {
  return `# ${whose(controller)} image, written by \`conveyor build\`: Conveyor and the controller in one file, no node_modules.
# docker build -t <image> .   then run it as \`watch\`, \`worker\` or \`dispatch\` (the manifests do).
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY ${BUNDLE_FILE} /app/${BUNDLE_FILE}
# The image's \`node\` user, by number so Kubernetes' runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["node", "/app/${BUNDLE_FILE}"]
`;
}

/** Everything but the bundle stays out of the build context. */
export function dockerignore(): string {
  return `# Only the bundle goes into the image.\n*\n!${BUNDLE_FILE}\n`;
}

export interface ServerlessOptions {
  controller: Served;
  /** The build output directory as seen from serverless.yml's directory ('' when they are the same). */
  outFromServerless: string;
  region: string;
}

const join = (dir: string, file: string) => (dir === '' || dir === '.' ? file : `${dir.replace(/\/$/, '')}/${file}`);

/** The handler's path inside the zip: the same as from serverless.yml, so `serverless offline` finds the file the zip holds. */
export function zipEntryPath(o: ServerlessOptions): string {
  return join(o.outFromServerless, LAMBDA_HANDLER_FILE);
}

export function serverlessYml(o: ServerlessOptions): string {
  const resources = servedControllers(o.controller)
    .map((c) => `${c.for.group === '' ? '' : `${c.for.group}/`}${c.for.version} ${c.for.plural}`)
    .join(', ');
  const handler = join(o.outFromServerless, LAMBDA_HANDLER_FILE).replace(/\.mjs$/, '.handler');
  return `# ${whose(o.controller)} reconcile function on AWS Lambda, written by \`conveyor build\` (rebuild rather than edit).
# \`serverless deploy\` (osls, the maintained Serverless Framework v3 fork, or the Framework itself) uploads the prebuilt
# ${join(o.outFromServerless, LAMBDA_ZIP_FILE)}; \`serverless offline start\` serves the same handler on 127.0.0.1:3002 for
# \`conveyor dispatch --endpoint http://127.0.0.1:3002\`. Deploying: docs/deploying-to-lambda.md (VPC, credentials, IAM).
service: conveyor-${deploymentName(o.controller)}
frameworkVersion: '4'

provider:
  name: aws
  runtime: nodejs22.x
  architecture: arm64
  region: \${env:AWS_REGION, '${o.region}'}
  stage: \${opt:stage, 'prod'}
  memorySize: 512
  # The dispatcher's lambda.functionTimeout matches it; the handler stops a reconcile 1 s before it.
  timeout: 30
  logRetentionInDays: 14
  environment:
    CONVEYOR_REDIS__URL: \${env:CONVEYOR_REDIS__URL, 'redis://127.0.0.1:6379'}
    CONVEYOR_REDIS__PREFIX: \${env:CONVEYOR_REDIS__PREFIX, 'conveyor'}
    # Credentials for the API server: a ServiceAccount token with the worker ClusterRole only
    # (base/rbac-worker.yaml of the manifests). Lambda encrypts environment variables at rest; use a KMS key you own.
    CONVEYOR_KUBE__SERVER: \${env:CONVEYOR_KUBE__SERVER, 'https://kubernetes.example.invalid:6443'}
    CONVEYOR_KUBE__TOKEN: \${env:CONVEYOR_KUBE__TOKEN, 'set-CONVEYOR_KUBE__TOKEN'}
    # The cluster's CA, base64 of its PEM (a kubeconfig's certificate-authority-data), pinned instead of the system CAs:
    # EKS shows it as the cluster's certificateAuthority.data. Skipping verification instead is a last resort.
    CONVEYOR_KUBE__CA_DATA: \${env:CONVEYOR_KUBE__CA_DATA, ''}
    CONVEYOR_KUBE__INSECURE_SKIP_TLS_VERIFY: \${env:CONVEYOR_KUBE__INSECURE_SKIP_TLS_VERIFY, 'false'}
    CONVEYOR_API_BUDGET__QPS: \${env:CONVEYOR_API_BUDGET__QPS, '50'}
    CONVEYOR_LOG__LEVEL: \${env:CONVEYOR_LOG__LEVEL, 'info'}
  # The function reaches Redis and the API server inside your VPC; it needs no other AWS API.
  # vpc:
  #   securityGroupIds: [sg-0123456789abcdef0]
  #   subnetIds: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]

functions:
  reconcile:
    handler: ${handler}
    description: Conveyor reconcile of ${resources}
    # The dispatcher's concurrency bounds invocations; a reserved limit keeps a runaway from starving others.
    reservedConcurrency: 200

package:
  artifact: ${join(o.outFromServerless, LAMBDA_ZIP_FILE)}

plugins:
  - serverless-offline

custom:
  serverless-offline:
    host: 127.0.0.1
    lambdaPort: \${env:LAMBDA_PORT, '3002'}
    httpPort: \${env:LAMBDA_HTTP_PORT, '3003'}
    noPrependStageInUrl: true
`;
}

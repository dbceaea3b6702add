// Builds a @kubernetes/client-node KubeConfig from Conveyor's configuration: explicit server + token, a kubeconfig file, or in-cluster.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import { ConfigError, errorMessage } from '../errors.ts';

export type KubeConnection = Config['kube'];

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Chooses, in order: `server` + `token`/`tokenFile`; `inCluster`; `kubeconfig` (KUBECONFIG lands
 * here through the config loader); a service account mounted in the pod; `~/.kube/config`.
 */
export function createKubeConfig(connection: KubeConnection): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (connection.server !== undefined) {
      const token = connection.token ?? readToken(connection.tokenFile);
      kc.loadFromOptions({
        clusters: [
          {
            name: 'conveyor',
            server: connection.server,
            skipTLSVerify: connection.insecureSkipTlsVerify,
            ...pinnedCa(connection),
          },
        ],
        users: [{ name: 'conveyor', token }],
        contexts: [{ name: 'conveyor', cluster: 'conveyor', user: 'conveyor' }],
        currentContext: 'conveyor',
      });
      return kc;
    }
    if (connection.inCluster) {
      kc.loadFromCluster();
      return kc;
    }
    const file = connection.kubeconfig ?? defaultKubeconfig();
    if (file !== undefined) {
      kc.loadFromFile(file);
      if (connection.context !== undefined) kc.setCurrentContext(connection.context);
      if (kc.getCurrentCluster() === null) {
        throw new ConfigError([{ path: 'kube.kubeconfig', message: `${file} has no current context with a cluster` }]);
      }
      return kc;
    }
    if (existsSync(SERVICE_ACCOUNT_TOKEN)) {
      kc.loadFromCluster();
      return kc;
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError([{ path: 'kube', message: `cannot load Kubernetes connection: ${errorMessage(error)}` }]);
  }
  throw new ConfigError([
    {
      path: 'kube',
      message: 'no Kubernetes connection: set KUBECONFIG or kube.kubeconfig, kube.server with kube.token, or run in a cluster',
    },
  ]);
}

/**
 * The CA pinned for `kube.server`, checked now so a wrong path or a mangled value is a configuration
 * error at start-up rather than a TLS failure on every request. Without one, Node's own CAs apply.
 */
function pinnedCa(connection: KubeConnection): { caData?: string } {
  let pem: string;
  let path: string;
  if (connection.caFile !== undefined) {
    path = 'kube.caFile';
    try {
      pem = readFileSync(connection.caFile, 'utf8');
    } catch (error) {
      throw new ConfigError([{ path, message: `cannot read the CA file: ${errorMessage(error)}`, source: connection.caFile }]);
    }
  } else if (connection.caData !== undefined && connection.caData !== '') {
    path = 'kube.caData';
    pem = Buffer.from(connection.caData, 'base64').toString('utf8');
  } else {
    return {};
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    const what = path === 'kube.caFile' ? 'holds no PEM certificate' : 'is not base64 of a PEM certificate (certificate-authority-data)';
    throw new ConfigError([{ path, message: what }]);
  }
  return { caData: Buffer.from(pem).toString('base64') };
}

function readToken(file: string | undefined): string {
  if (file === undefined) throw new ConfigError([{ path: 'kube.server', message: 'needs kube.token or kube.tokenFile' }]);
  return readFileSync(file, 'utf8').trim();
}

function defaultKubeconfig(): string | undefined {
  const file = join(homedir(), '.kube', 'config');
  return existsSync(file) ? file : undefined;
}

/** What `applySecurityAuthentication` fills in: headers and, for TLS or skipTLSVerify, an undici dispatcher. */
interface AuthContext {
  getDispatcher(): { close(): Promise<void> } | undefined;
  setDispatcher(dispatcher: never): void;
}

type Dispatcher = NonNullable<ReturnType<AuthContext['getDispatcher']>>;

const dispatchers = new WeakMap<KubeConfig, { dispatcher: Dispatcher; since: number }>();

/** How long one connection pool serves a KubeConfig before the next request gets a fresh one. */
export const DISPATCHER_MAX_AGE_MS = 5 * 60_000;

/**
 * Authenticates one request with the KubeConfig and makes it use one connection pool per KubeConfig.
 *
 * client-node 2.x builds a new undici Agent in every `applySecurityAuthentication` call whenever TLS
 * options apply (an https server, or skipTLSVerify), so without this every API call opens a new TCP
 * (and TLS) connection and closes it: thousands of sockets in TIME_WAIT, ephemeral ports running out
 * after a few thousand reconciles ("fetch failed"), and a TLS handshake per call against a real
 * cluster. The first dispatcher is kept and reused, and later ones are closed unused. The kept
 * dispatcher is replaced after DISPATCHER_MAX_AGE_MS, because an exec credential plugin may hand out
 * client certificates that expire (Teleport's, for one); the old pool finishes what it carries
 * (watches end at their timeout).
 */
export async function applyKubeAuth<C extends AuthContext>(kc: KubeConfig, context: C, now: () => number = Date.now): Promise<C> {
  await kc.applySecurityAuthentication(context as never);
  const fresh = context.getDispatcher();
  if (fresh === undefined) return context;
  const kept = dispatchers.get(kc);
  const at = now();
  if (kept === undefined || at - kept.since >= DISPATCHER_MAX_AGE_MS) {
    // The old pool is not closed: a request may hold it while it waits for the API budget, and a closed
    // pool would fail it. Its idle connections close after undici's keep-alive timeout, and then it is
    // garbage like any other object.
    dispatchers.set(kc, { dispatcher: fresh, since: at });
  } else if (kept.dispatcher !== fresh) {
    void fresh.close().catch(() => {});
    context.setDispatcher(kept.dispatcher as never);
  }
  return context;
}

// Who may ask for a manual reconcile: bearer tokens from a token file (stored as SHA-256 hashes) and/or
// the cluster's own TokenReview + SubjectAccessReview (verb `update` on the resource), as kube-rbac-proxy does.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Clock, ConfigError, errorMessage, type KubeTransport, type ObjectKey, systemClock } from '@conveyor/shared';
import type { V1SubjectAccessReview, V1TokenReview } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export interface Identity {
  user: string;
  groups: readonly string[];
  via: 'token-file' | 'token-review';
  /** Token-file users may be limited to namespaces; absent means every namespace. */
  namespaces?: readonly string[];
}

export interface Authenticator {
  /** The caller behind a bearer token, or undefined when the token is unknown. Throws when it cannot tell. */
  authenticate(token: string): Promise<Identity | undefined>;
}

export interface Authorizer {
  /** Whether `identity` may trigger a reconcile of `key` (Kubernetes: `update` on the object). */
  authorize(identity: Identity, key: ObjectKey): Promise<boolean>;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const tokenFileSchema = z.strictObject({
  tokens: z
    .array(
      z.strictObject({
        user: z.string().min(1),
        groups: z.array(z.string()).default([]),
        /** Hex SHA-256 of the token (`conveyor token hash` prints it); the token itself is never stored. */
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the token'),
        namespaces: z.array(z.string().min(1)).optional(),
      }),
    )
    .min(1),
});

/** Tokens from a YAML file of `{ tokens: [{ user, sha256, namespaces? }] }`. */
export class TokenFileAuth implements Authenticator, Authorizer {
  private readonly entries: { identity: Identity; digest: Buffer }[];

  constructor(entries: z.output<typeof tokenFileSchema>['tokens']) {
    this.entries = entries.map((e) => ({
      identity: { user: e.user, groups: e.groups, via: 'token-file', ...(e.namespaces === undefined ? {} : { namespaces: e.namespaces }) },
      digest: Buffer.from(e.sha256, 'hex'),
    }));
  }

  static fromFile(path: string): TokenFileAuth {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new ConfigError([{ path: 'api.tokenFile', message: `cannot read token file: ${errorMessage(error)}`, source: path }]);
    }
    const result = tokenFileSchema.safeParse(parsed);
    if (!result.success) {
      throw new ConfigError(result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message, source: path })));
    }
    return new TokenFileAuth(result.data.tokens);
  }

  async authenticate(token: string): Promise<Identity | undefined> {
    const digest = Buffer.from(hashToken(token), 'hex');
    let found: Identity | undefined;
    // Compare against every entry in constant time, so timing does not reveal which hash is close.
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, digest)) found = entry.identity;
    return found;
  }

  async authorize(identity: Identity, key: ObjectKey): Promise<boolean> {
    return identity.via === 'token-file' && (identity.namespaces === undefined || identity.namespaces.includes(key.namespace));
  }
}

/**
 * Authentication or authorisation could not be decided (the API server failed, or did not answer in
 * time). Its message is for the log only: it may hold the API server's own words.
 */
export class AuthUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthUnavailableError';
  }
}

/** TokenReview to authenticate, SubjectAccessReview (`update` on the object) to authorise; answers cached briefly. */
export class KubeAuth implements Authenticator, Authorizer {
  private readonly transport: Pick<KubeTransport, 'request'>;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly reviews = new Map<string, { at: number; identity: Identity | undefined }>();
  private readonly decisions = new Map<string, { at: number; allowed: boolean }>();

  /** `timeoutMs` bounds each review (api.timeout): a paused API server must not hold callers. @defaultValue 5000 */
  constructor(transport: Pick<KubeTransport, 'request'>, options: { ttlMs?: number; timeoutMs?: number; clock?: Clock } = {}) {
    this.transport = transport;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.clock = options.clock ?? systemClock;
  }

  /** One review request, bounded by the timeout; any failure is an AuthUnavailableError naming the review. */
  private async review(kind: 'TokenReview' | 'SubjectAccessReview', path: string, body: unknown): Promise<unknown> {
    try {
      return await this.transport.request('POST', path, body, AbortSignal.timeout(this.timeoutMs));
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      const what = timedOut ? `no answer within ${this.timeoutMs} ms` : errorMessage(error);
      throw new AuthUnavailableError(`${kind} failed: ${what}`, { cause: error });
    }
  }

  async authenticate(token: string): Promise<Identity | undefined> {
    const cacheKey = hashToken(token);
    const cached = this.fresh(this.reviews, cacheKey);
    if (cached !== undefined) return cached.identity;
    const body: V1TokenReview = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } };
    const review = (await this.review('TokenReview', '/apis/authentication.k8s.io/v1/tokenreviews', body)) as V1TokenReview;
    const status = review.status;
    const identity: Identity | undefined =
      status?.authenticated === true && status.user?.username !== undefined
        ? { user: status.user.username, groups: status.user.groups ?? [], via: 'token-review' }
        : undefined;
    this.remember(this.reviews, cacheKey, { at: this.clock.now(), identity });
    return identity;
  }

  async authorize(identity: Identity, key: ObjectKey): Promise<boolean> {
    if (identity.via !== 'token-review') return false;
    const cacheKey = JSON.stringify([identity.user, identity.groups, key.group, key.plural, key.namespace, key.name]);
    const cached = this.fresh(this.decisions, cacheKey);
    if (cached !== undefined) return cached.allowed;
    const body: V1SubjectAccessReview = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: identity.user,
        groups: [...identity.groups],
        resourceAttributes: {
          group: key.group,
          version: key.version,
          resource: key.plural,
          namespace: key.namespace,
          name: key.name,
          verb: 'update',
        },
      },
    };
    const review = (await this.review(
      'SubjectAccessReview',
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      body,
    )) as V1SubjectAccessReview;
    const allowed = review.status?.allowed === true && review.status.denied !== true;
    this.remember(this.decisions, cacheKey, { at: this.clock.now(), allowed });
    return allowed;
  }

  private fresh<V extends { at: number }>(map: Map<string, V>, key: string): V | undefined {
    const entry = map.get(key);
    if (entry === undefined || this.clock.now() - entry.at > this.ttlMs) return undefined;
    return entry;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    if (map.size >= 10_000) map.clear(); // bounded: a flood of distinct tokens cannot grow memory
    map.set(key, value);
  }
}

/** Tries each authenticator in turn; the first that knows the token answers, and its own authorizer decides. */
export class ChainAuth implements Authenticator, Authorizer {
  private readonly links: readonly (Authenticator & Authorizer)[];

  constructor(links: readonly (Authenticator & Authorizer)[]) {
    this.links = links;
  }

  async authenticate(token: string): Promise<Identity | undefined> {
    for (const link of this.links) {
      const identity = await link.authenticate(token);
      if (identity !== undefined) return identity;
    }
    return undefined;
  }

  async authorize(identity: Identity, key: ObjectKey): Promise<boolean> {
    for (const link of this.links) if (await link.authorize(identity, key)) return true;
    return false;
  }
}

// TokenReview and SubjectAccessReview (create-only kinds) answered from the simulator's own tokens and authorization rules.
import type { RequestAttributes, SimUser } from './auth.ts';
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';
import type { ServerParts } from './server.ts';
import { errors, type JsonObject } from './status.ts';

/** TokenReview and SubjectAccessReview answered from the simulator's own tokens and rules. */
export function review(parts: ServerParts, t: ResourceType, body: unknown, user: SimUser): JsonObject {
  if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
  const spec = (isObject(body.spec) ? body.spec : {}) as JsonObject;
  const base = {
    kind: t.kind,
    apiVersion: `${t.group}/${t.version}`,
    metadata: { ...(isObject(body.metadata) ? body.metadata : {}), creationTimestamp: null },
    spec,
  };
  if (t.plural === 'tokenreviews') {
    const found = typeof spec.token === 'string' ? parts.authn.fromToken(spec.token) : undefined;
    return {
      ...base,
      status:
        found === undefined
          ? { authenticated: false, user: {}, error: 'invalid bearer token' }
          : {
              authenticated: true,
              user: { username: found.username, uid: found.username, groups: found.groups },
              audiences: spec.audiences ?? [],
            },
    };
  }
  const attrsIn = (isObject(spec.resourceAttributes) ? spec.resourceAttributes : {}) as JsonObject;
  const subject =
    t.plural === 'selfsubjectaccessreviews'
      ? user
      : { username: String(spec.user ?? ''), groups: (spec.groups as string[] | undefined) ?? [] };
  const resource = String(attrsIn.resource ?? '');
  const attrs: RequestAttributes = {
    verb: String(attrsIn.verb ?? ''),
    apiGroup: String(attrsIn.group ?? ''),
    resource: attrsIn.subresource ? `${resource}/${String(attrsIn.subresource)}` : resource,
    namespace: String(attrsIn.namespace ?? ''),
    name: String(attrsIn.name ?? ''),
  };
  const decision = parts.authz.decide(subject, attrs);
  return { ...base, status: { allowed: decision.allowed, ...(decision.allowed ? {} : { denied: true }), reason: decision.reason } };
}

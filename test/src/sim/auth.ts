// Bearer-token authentication and a small rule-based authorizer, which SubjectAccessReview also answers from.

export interface SimUser {
  token: string;
  username: string;
  groups: string[];
}

/** Allows when every listed field matches; an absent field or `*` matches anything. */
export interface AuthorizationRule {
  users?: string[];
  groups?: string[];
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  /** RBAC's resourceNames: only requests naming one of these objects (so never a create, list or watch of the collection). */
  resourceNames?: string[];
  namespaces?: string[];
}

export interface RequestAttributes {
  verb: string;
  apiGroup: string;
  /** Plural, with `/subresource` when there is one. */
  resource: string;
  namespace: string;
  name: string;
}

export type TokenSpec = string | { token: string; username?: string; groups?: string[] };

export class Authenticator {
  private readonly users = new Map<string, SimUser>();

  constructor(tokens: readonly TokenSpec[]) {
    tokens.forEach((spec, i) => {
      const user = typeof spec === 'string' ? { token: spec } : spec;
      this.users.set(user.token, {
        token: user.token,
        username: user.username ?? (i === 0 ? 'admin' : `user-${i}`),
        groups: user.groups ?? ['system:masters', 'system:authenticated'],
      });
    });
  }

  /** The user behind an `Authorization: Bearer` header, or undefined (401). */
  fromHeader(header: string | undefined): SimUser | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    return match === null ? undefined : this.users.get(match[1] as string);
  }

  fromToken(token: string): SimUser | undefined {
    return this.users.get(token);
  }
}

function matches(list: readonly string[] | undefined, value: string): boolean {
  return list === undefined || list.includes('*') || list.includes(value);
}

export class Authorizer {
  private readonly rules: readonly AuthorizationRule[] | undefined;

  /** `undefined` rules: allow everything (the default, like a cluster-admin token). */
  constructor(rules: readonly AuthorizationRule[] | undefined) {
    this.rules = rules;
  }

  decide(user: { username: string; groups: readonly string[] }, attrs: RequestAttributes): { allowed: boolean; reason: string } {
    if (this.rules === undefined) return { allowed: true, reason: 'the simulator allows every request' };
    const rule = this.rules.find(
      (r) =>
        (r.users === undefined || matches(r.users, user.username)) &&
        (r.groups === undefined || user.groups.some((g) => matches(r.groups, g))) &&
        matches(r.verbs, attrs.verb) &&
        matches(r.apiGroups, attrs.apiGroup) &&
        matches(r.resources, attrs.resource) &&
        (r.resourceNames === undefined || (attrs.name !== '' && r.resourceNames.includes(attrs.name))) &&
        (attrs.namespace === '' ? r.namespaces === undefined || r.namespaces.includes('*') : matches(r.namespaces, attrs.namespace)),
    );
    return rule === undefined ? { allowed: false, reason: 'no rule allows it' } : { allowed: true, reason: 'allowed by a simulator rule' };
  }
}

/** kube-apiserver's 403 message: `configmaps is forbidden: User "x" cannot list resource "configmaps" in API group "" in the namespace "y"`. */
export function forbiddenMessage(username: string, attrs: RequestAttributes): string {
  const [plural] = attrs.resource.split('/');
  const subject = attrs.name === '' ? plural : `${plural} "${attrs.name}"`;
  const where = attrs.namespace === '' ? 'at the cluster scope' : `in the namespace "${attrs.namespace}"`;
  return `${subject} is forbidden: User "${username}" cannot ${attrs.verb} resource "${attrs.resource}" in API group "${attrs.apiGroup}" ${where}`;
}

// Finds the resource (URL plural, scope) of an object from its apiVersion and kind: the resources a controller names first, then API discovery, cached per group version.
import { apiVersionOf, type ResourceRef } from '../object-key.ts';

/** A resource with what an apply needs to build its URL. */
export interface KindMapping extends ResourceRef {
  kind: string;
  namespaced: boolean;
}

/** A resource as a controller may name it (its `kind` and `namespaced` optional). */
export interface KnownResource extends ResourceRef {
  kind?: string;
  namespaced?: boolean;
}

interface DiscoveredList {
  resources?: { name?: string; kind?: string; namespaced?: boolean }[];
}

/**
 * Maps apiVersion + kind to a resource. Resources the controller declares (with their `kind`) answer
 * without a request; any other kind costs one discovery GET per group version and process, after
 * which it is cached. A failed discovery is not cached, so the next call tries again.
 */
export class KindResolver {
  private readonly known = new Map<string, KindMapping>();
  private readonly discovered = new Map<string, Promise<Map<string, KindMapping>>>();
  private readonly discover: (apiVersion: string) => Promise<unknown>;

  /** `discover` GETs the discovery document of an apiVersion (`/api/v1`, `/apis/apps/v1`). */
  constructor(known: readonly KnownResource[], discover: (apiVersion: string) => Promise<unknown>) {
    this.discover = discover;
    for (const r of known) {
      if (r.kind === undefined) continue;
      const mapping = { group: r.group, version: r.version, plural: r.plural, kind: r.kind, namespaced: r.namespaced ?? true };
      this.known.set(`${apiVersionOf(r)}|${r.kind}`, mapping);
    }
  }

  async resolve(apiVersion: string, kind: string): Promise<KindMapping> {
    const known = this.known.get(`${apiVersion}|${kind}`);
    if (known !== undefined) return known;
    let list = this.discovered.get(apiVersion);
    if (list === undefined) {
      list = this.load(apiVersion);
      this.discovered.set(apiVersion, list);
      list.catch(() => this.discovered.delete(apiVersion));
    }
    const found = (await list).get(kind);
    if (found === undefined) throw new Error(`the API server serves no kind ${kind} in ${apiVersion}`);
    return found;
  }

  private async load(apiVersion: string): Promise<Map<string, KindMapping>> {
    const slash = apiVersion.lastIndexOf('/');
    const group = slash === -1 ? '' : apiVersion.slice(0, slash);
    const version = apiVersion.slice(slash + 1);
    const doc = (await this.discover(apiVersion)) as DiscoveredList | undefined;
    const out = new Map<string, KindMapping>();
    for (const r of doc?.resources ?? []) {
      // Subresources (`widgets/status`) carry their parent's kind; only the resource itself maps.
      if (typeof r.name !== 'string' || r.name.includes('/') || typeof r.kind !== 'string') continue;
      out.set(r.kind, { group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced ?? true });
    }
    return out;
  }
}

// Which resources are served right now: the built-in ones plus the versions of every established CRD.
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';

export class TypeRegistry {
  private readonly types = new Map<string, ResourceType>();

  constructor() {
    for (const t of BUILTIN_RESOURCES) this.types.set(id(t.group, t.version, t.plural), t);
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.get(id(group, version, plural));
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.version === version);
  }

  /** Replaces every type stored under `storageKey` with `types` (a CRD created, changed or removed). */
  replace(storageKey: string, types: readonly ResourceType[]): void {
    for (const [key, t] of this.types) if (t.storageKey === storageKey && !isBuiltin(t)) this.types.delete(key);
    for (const t of types) this.types.set(id(t.group, t.version, t.plural), t);
  }
}

function isBuiltin(t: ResourceType): boolean {
  return BUILTIN_RESOURCES.includes(t);
}

function id(group: string, version: string, plural: string): string {
  return `${group}/${version}/${plural}`;
}

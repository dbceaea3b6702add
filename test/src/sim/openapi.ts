// A skeletal OpenAPI v3 (`/openapi/v3`): enough for kubectl to see that every kind takes `fieldValidation`, so it validates on the server side.
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceType } from './resources.ts';
import type { JsonObject } from './status.ts';

function groupVersionPath(t: { group: string; version: string }): string {
  return t.group === '' ? `api/${t.version}` : `apis/${t.group}/${t.version}`;
}

const QUERY_PARAMS = ['dryRun', 'fieldManager', 'fieldValidation'].map((name) => ({
  name,
  in: 'query',
  schema: { type: 'string', uniqueItems: true },
}));

/** The document for one group/version: a PATCH operation per resource, tagged with its kind, without schemas. */
export function openApiGroupVersion(types: readonly ResourceType[]): JsonObject {
  const paths: JsonObject = {};
  for (const t of types) {
    if (t.createOnly) continue;
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const base = `/${groupVersionPath(t)}/${t.namespaced ? 'namespaces/{namespace}/' : ''}${t.plural}`;
    const operation = (action: string) => ({
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      parameters: QUERY_PARAMS,
      responses: { '200': { description: 'OK' } },
    });
    paths[base] = { post: operation('post') };
    paths[`${base}/{name}`] = { put: operation('put'), patch: operation('patch') };
  }
  const first = types[0];
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (conveyor simulator)', version: first === undefined ? 'v1' : apiVersionOf(first) },
    paths,
    components: { schemas: {} },
  };
}

/** `/openapi/v3`: where each group/version's document lives. */
export function openApiIndex(types: readonly ResourceType[]): JsonObject {
  const paths: JsonObject = {};
  const byGroupVersion = new Map<string, ResourceType[]>();
  for (const t of types) byGroupVersion.set(groupVersionPath(t), [...(byGroupVersion.get(groupVersionPath(t)) ?? []), t]);
  for (const [path, list] of byGroupVersion) {
    const hash = createHash('sha256')
      .update(JSON.stringify(openApiGroupVersion(list)))
      .digest('hex')
      .slice(0, 32)
      .toUpperCase();
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { paths };
}

/** The types of the group/version an `/openapi/v3/<path>` request names, or undefined. */
export function typesOfOpenApiPath(types: readonly ResourceType[], path: string): ResourceType[] | undefined {
  const found = types.filter((t) => `/openapi/v3/${groupVersionPath(t)}` === path);
  return found.length === 0 ? undefined : found;
}

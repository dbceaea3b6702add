// The writing verbs over HTTP (create, update, patch, apply, delete, deletecollection): their query parameters and options, then the object API, answered with Warning headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimUser } from './auth.ts';
import { type FieldValidation, parseFieldValidation } from './field-validation.ts';
import { mediaType, optional, parseJson, parseObjectBody, readBody, send } from './http-io.ts';
import { listObjects } from './list.ts';
import { managerFromUserAgent } from './managed-fields.ts';
import { type DeleteOptions, deleteObject, type PropagationPolicy } from './object-deletion.ts';
import { meta, type WriteContext } from './objects.ts';
import { isObject, PATCH_TYPES } from './patch.ts';
import { review } from './reviews.ts';
import { patchScale, updateScale } from './scale-subresource.ts';
import type { ResourceRequest, ServerParts } from './server.ts';
import { serverSideApply } from './server-side-apply.ts';
import { errors, type JsonObject, successStatus } from './status.ts';
import { listBody, objectView } from './views.ts';

type OptionsKind = 'CreateOptions' | 'UpdateOptions' | 'PatchOptions' | 'DeleteOptions';

function writeContext(req: IncomingMessage, url: URL, kind: OptionsKind): WriteContext {
  const params = url.searchParams;
  const dryRun = params.getAll('dryRun');
  if (dryRun.some((d) => d !== 'All'))
    throw errors.badRequest(`dryRun: Unsupported value: ${JSON.stringify(dryRun)}: supported values: "All"`);
  const fieldValidation: FieldValidation = kind === 'DeleteOptions' ? 'Ignore' : parseFieldValidation(params.get('fieldValidation'), kind);
  return {
    manager: params.get('fieldManager') ?? managerFromUserAgent(req.headers['user-agent']),
    dryRun: dryRun.length > 0,
    fieldValidation,
    warnings: [],
  };
}

function reply(res: ServerResponse, code: number, body: unknown, ctx?: WriteContext): number {
  send(res, code, body, {}, ctx?.warnings ?? []);
  return code;
}

/** Serves one writing request; returns the HTTP status it answered with. */
export async function serveWrite(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  r: ResourceRequest,
  user: SimUser,
): Promise<number> {
  const { t, namespace, name } = r;
  switch (r.verb) {
    case 'create': {
      const body = parseObjectBody(req, await readBody(req));
      if (t.createOnly) return reply(res, 201, review(parts, t, body, user));
      const ctx = writeContext(req, url, 'CreateOptions');
      return reply(res, 201, objectView(t, parts.objects.create(t, namespace, body, ctx), 'full'), ctx);
    }
    case 'update': {
      const body = parseObjectBody(req, await readBody(req));
      const ctx = writeContext(req, url, 'UpdateOptions');
      if (r.subresource === 'scale') return reply(res, 200, updateScale(parts.objects, t, namespace, name, body, ctx), ctx);
      return reply(res, 200, objectView(t, parts.objects.update(t, namespace, name, body, ctx, r.subresource), 'full'), ctx);
    }
    case 'patch':
      return servePatch(parts, req, res, url, r);
    case 'delete': {
      const ctx = writeContext(req, url, 'DeleteOptions');
      const options = deleteOptions(parseJson(await readBody(req)), url.searchParams, ctx);
      const result = deleteObject(parts.objects, t, namespace, name, options, ctx);
      if (result.deleted && !t.returnDeletedObject) {
        return reply(res, 200, successStatus({ name, group: t.group, kind: t.plural, uid: String(meta(result.object).uid) }));
      }
      return reply(res, 200, objectView(t, result.object, 'full'));
    }
    case 'deletecollection': {
      const ctx = writeContext(req, url, 'DeleteOptions');
      const options = deleteOptions(parseJson(await readBody(req)), url.searchParams, ctx);
      const params = url.searchParams;
      const page = listObjects(
        parts.store,
        t,
        {
          namespace,
          labelSelector: optional(params, 'labelSelector'),
          fieldSelector: optional(params, 'fieldSelector'),
          limit: undefined,
          continueToken: undefined,
          resourceVersion: undefined,
          resourceVersionMatch: undefined,
        },
        parts.continueTtlMs,
        parts.now(),
      );
      const gone = page.items.map((obj) => {
        const m = meta(obj);
        return deleteObject(parts.objects, t, String(m.namespace ?? ''), String(m.name), options, ctx).object;
      });
      return reply(res, 200, listBody(t, gone, { resourceVersion: String(parts.store.currentRevision) }, 'full'));
    }
    default:
      throw errors.methodNotAllowed();
  }
}

async function servePatch(parts: ServerParts, req: IncomingMessage, res: ServerResponse, url: URL, r: ResourceRequest): Promise<number> {
  const { t, namespace, name } = r;
  const contentType = mediaType(req.headers['content-type']);
  const text = await readBody(req);
  const ctx = writeContext(req, url, 'PatchOptions');
  const params = url.searchParams;
  const force = params.get('force');
  if (contentType !== PATCH_TYPES.apply && force !== null) {
    throw errors.invalid('PatchOptions', 'meta.k8s.io', '', [
      { field: 'force', reason: 'FieldValueForbidden', message: 'Forbidden: may not be specified for non-apply patch' },
    ]);
  }
  if (r.subresource === 'scale')
    return reply(res, 200, patchScale(parts.objects, t, namespace, name, contentType, parseJson(text), ctx), ctx);
  if (contentType === PATCH_TYPES.apply) {
    const manager = params.get('fieldManager');
    if (manager === null || manager === '') {
      throw errors.invalid('PatchOptions', 'meta.k8s.io', '', [
        { field: 'fieldManager', reason: 'FieldValueRequired', message: 'Required value: is required for apply patch' },
      ]);
    }
    const result = serverSideApply(parts.objects, t, namespace, name, text, ctx, {
      manager,
      force: force === 'true',
      subresource: r.subresource,
    });
    return reply(res, result.created ? 201 : 200, objectView(t, result.object, 'full'), ctx);
  }
  const patched = parts.objects.patch(t, namespace, name, contentType, parseJson(text), ctx, r.subresource);
  return reply(res, 200, objectView(t, patched, 'full'), ctx);
}

const POLICIES: readonly string[] = ['Foreground', 'Background', 'Orphan'];

/** DeleteOptions from the body and the query: preconditions, dryRun, propagationPolicy (or the older orphanDependents). */
function deleteOptions(body: unknown, params: URLSearchParams, ctx: WriteContext): DeleteOptions {
  const options: DeleteOptions = { dryRun: ctx.dryRun };
  const b: JsonObject = isObject(body) ? body : {};
  if (Array.isArray(b.dryRun) && b.dryRun.includes('All')) options.dryRun = true;
  if (isObject(b.preconditions)) {
    const pre = b.preconditions;
    options.preconditions = {
      ...(typeof pre.uid === 'string' ? { uid: pre.uid } : {}),
      ...(typeof pre.resourceVersion === 'string' ? { resourceVersion: pre.resourceVersion } : {}),
    };
  }
  const policy = params.get('propagationPolicy') ?? (typeof b.propagationPolicy === 'string' ? b.propagationPolicy : null);
  const orphan = params.get('orphanDependents') ?? (typeof b.orphanDependents === 'boolean' ? String(b.orphanDependents) : null);
  if (policy !== null && orphan !== null) {
    throw errors.invalid('DeleteOptions', 'meta.k8s.io', '', [
      {
        field: 'propagationPolicy',
        reason: 'FieldValueInvalid',
        message: 'Invalid value: "": orphanDependents and deletionPropagation cannot be both set',
      },
    ]);
  }
  if (policy !== null) {
    if (!POLICIES.includes(policy)) {
      throw errors.invalid('DeleteOptions', 'meta.k8s.io', '', [
        {
          field: 'propagationPolicy',
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: ${JSON.stringify(policy)}: supported values: "Foreground", "Background", "Orphan"`,
        },
      ]);
    }
    options.propagationPolicy = policy as PropagationPolicy;
  } else if (orphan !== null) {
    options.propagationPolicy = orphan === 'true' ? 'Orphan' : 'Background';
  }
  return options;
}

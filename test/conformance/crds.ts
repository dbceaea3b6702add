// The CustomResourceDefinitions the conformance suite creates, typed with client-node's models so tsc rejects a wire name (`'x-kubernetes-...'`) that client-node would silently drop.
import type { V1CustomResourceDefinition, V1JSONSchemaProps } from '@kubernetes/client-node';

const string: V1JSONSchemaProps = { type: 'string' };
const integer: V1JSONSchemaProps = { type: 'integer' };

/** What a Widget declares: every field the tests store, plus one of each kind of rule the schema tests exercise. */
const widgetSchema: V1JSONSchemaProps = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        size: { type: 'integer', minimum: 0, maximum: 1000 },
        replicas: { type: 'integer', minimum: 0 },
        secret: string,
        color: { type: 'string', _enum: ['red', 'green', 'blue'] },
        name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 16 },
        port: { x_kubernetes_int_or_string: true },
        ratio: { type: 'number', exclusiveMinimum: true, minimum: 0 },
        tags: { type: 'array', items: string, x_kubernetes_list_type: 'set' },
        owner: { type: 'object', required: ['team'], properties: { team: string, email: string } },
        policy: {
          type: 'object',
          properties: { mode: { type: 'string', _default: 'Auto' }, retries: { type: 'integer', _default: 3 } },
        },
        config: {
          type: 'object',
          x_kubernetes_preserve_unknown_fields: true,
          properties: { declared: { type: 'object', properties: { kept: string } } },
        },
        template: { type: 'object', x_kubernetes_embedded_resource: true, x_kubernetes_preserve_unknown_fields: true },
      },
    },
    status: {
      type: 'object',
      properties: {
        phase: string,
        ready: { type: 'boolean' },
        replicas: integer,
        selector: string,
        observedGeneration: integer,
        conditions: {
          type: 'array',
          x_kubernetes_list_type: 'map',
          x_kubernetes_list_map_keys: ['type'],
          items: {
            type: 'object',
            required: ['type', 'status'],
            properties: { type: string, status: string, reason: string, message: string },
          },
        },
      },
    },
  },
};

/** Namespaced `widgets` with status and scale subresources and a schema that declares their fields. */
export function widgetDefinition(group: string): V1CustomResourceDefinition {
  return {
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: widgetSchema },
          subresources: {
            status: {},
            scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
          },
        },
      ],
    },
  };
}

/** Cluster-scoped `gadgets` without subresources, keeping whatever fields they are given. */
export function gadgetDefinition(group: string): V1CustomResourceDefinition {
  return {
    metadata: { name: `gadgets.${group}` },
    spec: {
      group,
      scope: 'Cluster',
      names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget', listKind: 'GadgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  };
}

// `conveyor init <dir>`: writes a new controller project for one custom resource (see project-files.ts), refusing to overwrite anything.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type Command, EXIT, type Flags, parseFlags, UsageError } from '../command.ts';
import { conveyorVersion } from '../conveyor-version.ts';
import { type ProjectSpec, projectFiles } from './project-files.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;
const PLURAL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const NPM_NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** The resource and project name from the flags, each checked, with a message naming the flag when it is wrong. */
export function projectSpec(dir: string, values: Record<string, string | undefined>, conveyorVersion: string): ProjectSpec {
  const kind = values.kind ?? 'Greeting';
  if (!KIND.test(kind)) throw new UsageError(`--kind must be a CamelCase Kubernetes kind such as Greeting, got "${kind}"`);
  const group = values.group ?? 'example.com';
  if (!DNS_SUBDOMAIN.test(group) || !group.includes('.'))
    throw new UsageError(`--group must be a DNS subdomain with a dot, such as example.com, got "${group}"`);
  const version = values.version ?? 'v1';
  if (!VERSION.test(version)) throw new UsageError(`--version must look like v1, v2beta1 or v1alpha1, got "${version}"`);
  const plural = values.plural ?? `${kind.toLowerCase()}s`;
  if (!PLURAL.test(plural) || plural.length > 63)
    throw new UsageError(`--plural must be lowercase letters, digits and dashes, such as greetings, got "${plural}"`);
  const name = basename(resolve(dir)).toLowerCase();
  if (!NPM_NAME.test(name)) throw new UsageError(`the directory's name "${basename(resolve(dir))}" is not a valid npm package name`);
  return { name, group, version, kind, plural, conveyorVersion };
}

const FLAGS = {
  kind: { type: 'string', value: '<Kind>', description: 'the custom resource’s kind, in CamelCase', defaultText: 'Greeting' },
  group: { type: 'string', value: '<group>', description: 'its API group, a DNS subdomain with a dot', defaultText: 'example.com' },
  version: { type: 'string', value: '<v1>', description: 'its API version', defaultText: 'v1' },
  plural: { type: 'string', value: '<plural>', description: 'its plural resource name', defaultText: 'the kind in lowercase, plus s' },
} as const satisfies Flags;

export const initCommand: Command = {
  name: 'init',
  summary: 'write a new controller project (package.json, controller.ts, its CRD and test, conveyor.yaml, README)',
  usage: 'conveyor init <dir> [--kind <Kind>] [--group <group>] [--version <v1>] [--plural <plural>]',
  flags: FLAGS,
  positionals: { '<dir>': 'the new project’s directory (created; it must not hold the files init writes)' },
  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS, true);
    if (positionals.length !== 1) throw new UsageError('give the new project’s directory, for example `conveyor init my-controller`');
    const dir = resolve(positionals[0] as string);
    const spec = projectSpec(dir, values, `^${conveyorVersion()}`);
    const files = projectFiles(spec);
    if (existsSync(dir)) {
      const clashes = readdirSync(dir).filter((entry) => entry in files);
      if (clashes.length > 0) throw new UsageError(`${dir} already has ${clashes.join(', ')}; init writes into a new or empty directory`);
    }
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    io.out(`conveyor init: wrote a ${spec.kind} controller (${spec.plural}.${spec.group}/${spec.version}) in ${dir}`);
    io.out(`next: cd ${positionals[0]} && npm install && npm test`);
    return EXIT.ok;
  },
};

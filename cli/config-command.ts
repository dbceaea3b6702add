// `conveyor config`: validates a configuration (file + environment) and prints the effective values, secrets redacted.
import { redactConfig } from '@conveyor/shared';
import { COMMON_FLAGS, type Command, EXIT, loadConfigOrThrow, parseFlags } from './command.ts';

const FLAGS = {
  config: COMMON_FLAGS.config,
  json: { ...COMMON_FLAGS.json, description: 'print the settings as one line of JSON' },
} as const;

export const configCommand: Command = {
  name: 'config',
  summary: 'check a configuration file and print the effective settings',
  usage: 'conveyor config [--config <file>] [--json]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const config = redactConfig(loadConfigOrThrow(values.config, io, undefined, true));
    io.out(values.json ? JSON.stringify(config) : JSON.stringify(config, null, 2));
    return EXIT.ok;
  },
};

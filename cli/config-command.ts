// `conveyor config`: validates a configuration (file + environment) and prints the effective values, secrets redacted.
import { redactConfig } from '@conveyor/shared';
import { type Command, EXIT, loadConfigOrThrow, parseFlags } from './command.ts';

export const configCommand: Command = {
  name: 'config',
  summary: 'check a configuration file and print the effective settings',
  usage: 'conveyor config [--config <file>] [--json]',
  async run(args, io) {
    const { values } = parseFlags(args, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } });
    const config = redactConfig(loadConfigOrThrow(values.config, io));
    io.out(values.json ? JSON.stringify(config) : JSON.stringify(config, null, 2));
    return EXIT.ok;
  },
};

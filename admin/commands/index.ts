/** Every admin command, in the order `vpc-lease --help` lists them. */
import type { Command } from './command.js';
import { configGetCommand, configSetCommand } from './config.js';
import { importCommand } from './import.js';
import { leaseCommand, leasesCommand, revokeCommand } from './leases.js';
import { reconcileCommand } from './reconcile.js';
import { routesCommand } from './routes.js';

export const COMMANDS: readonly Command[] = [
  leasesCommand,
  leaseCommand,
  revokeCommand,
  routesCommand,
  configGetCommand,
  configSetCommand,
  reconcileCommand,
  importCommand,
];

export type { Command, CommandContext, CommandOption } from './command.js';

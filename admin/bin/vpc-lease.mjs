#!/usr/bin/env node
// The `vpc-lease` admin CLI. It runs the TypeScript sources through tsx's loader, so the
// command works straight after `npm ci`, with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
// exitCode rather than process.exit(): lets a piped stdout drain before the process ends
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// The `vpc-lease` admin CLI. It runs the TypeScript sources through tsx's loader, so the
// command works straight after `npm ci`, with no build step.
import { register } from 'tsx/esm/api';

register();
// The AWS SDK warns on Node 20 that releases after January 2027 need Node 22; the
// versions in the lock file work, and the notice buries the command's own output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../cli.ts');
// exitCode rather than process.exit(): lets a piped stdout drain before the process ends
process.exitCode = await main(process.argv.slice(2));

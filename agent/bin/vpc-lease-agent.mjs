#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step, so a
// clean clone works after `npm ci`. For hosts, `npm run build:agent` makes one executable
// that needs no Node (dist/vpc-lease-agent) and one file that needs only Node
// (dist/vpc-lease-agent.mjs).
import { register } from 'tsx/esm/api';

register();
// The AWS SDK warns on Node 20 that releases after January 2027 need Node 22; the
// versions in the lock file work, and the notice buries the command's own output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('./entry.ts');

#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step, so a
// clean clone works after `npm ci`. For hosts, `npm run build:agent` makes one executable
// that needs no Node (dist/vpc-lease-agent) and one file that needs only Node
// (dist/vpc-lease-agent.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./entry.ts');

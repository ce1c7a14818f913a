#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step, so a
// clean clone works after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
const code = await main(process.argv.slice(2), process.env);
// Exit explicitly: a request abandoned by SIGTERM must not keep the process alive until its timeout.
process.exit(code);

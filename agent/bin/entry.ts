/**
 * The agent's process entry: the tsx bin (vpc-lease-agent.mjs), the single-file bundle and
 * the single executable all start here. No top-level await: the executable's bundle is
 * CommonJS (Node 20's single executable applications run a CommonJS script).
 */
import { main } from '../cli.js';

// The AWS SDK warns on Node < 22 that its future releases will need Node 22. The executable
// embeds the Node it was built with, so an operator could do nothing about that warning;
// the lock file pins SDK releases that work on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

main(process.argv.slice(2), process.env).then(
  // Exit explicitly: a request abandoned by SIGTERM must not keep the process alive until its timeout.
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`vpc-lease-agent: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);

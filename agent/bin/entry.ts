/** The agent's process entry: the tsx bin (vpc-lease-agent.mjs) and the single-file bundle both start here. */
import { main } from '../cli.js';

const code = await main(process.argv.slice(2), process.env);
// Exit explicitly: a request abandoned by SIGTERM must not keep the process alive until its timeout.
process.exit(code);

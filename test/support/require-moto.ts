/**
 * vitest globalSetup: the integration, e2e and reliability suites run against a real
 * moto_server. When moto is missing, say once what to run instead of failing every suite.
 */
import { MotoNotInstalledError, motoCommand } from '../../scripts/lib/moto.js';

export default function requireMoto(): void {
  try {
    motoCommand();
  } catch (error) {
    if (!(error instanceof MotoNotInstalledError)) throw error;
    // the message is the whole story: no stack trace under it
    process.stderr.write(`\nnpm test needs moto. ${error.message}\n\n`);
    process.exit(1);
  }
}

/**
 * `npm run lab [-- --hosts N]` (root, Linux): the data path on one machine. The local stack,
 * N hosts as network namespaces behind a "VPC router" namespace whose routes mirror moto's
 * route table, the real agent in each host (masquerading as flanneld's --ip-masq), and
 * containers attached by Debian's bridge + host-local CNI plugins from subnet.env. It prints
 * what it checks and exits 1 when a check fails; Ctrl-C or a failure removes everything it made.
 */
import { parseArgs } from 'node:util';
import { judgeLab } from './lib/lab/judge.js';
import { LabPrerequisiteError } from './lib/lab/preflight.js';
import { runLab } from './lib/lab/run-lab.js';

async function cli(): Promise<number> {
  // Node 20 here: the SDK's notice that it will need Node 22 is noise in the lab's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let hosts = 3;
  try {
    const { values } = parseArgs({ options: { hosts: { type: 'string' } }, strict: true });
    if (values.hosts !== undefined) hosts = Number(values.hosts);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: npm run lab [-- --hosts N]\n`);
    return 2;
  }
  const interrupted = new AbortController();
  let firstSignalAt = 0;
  const onSignal = () => {
    if (interrupted.signal.aborted) {
      // npm and tsx each relay Ctrl-C: only a later, deliberate second one skips the cleanup.
      if (Date.now() - firstSignalAt > 1000) process.exit(130);
      return;
    }
    firstSignalAt = Date.now();
    process.stderr.write('\nInterrupted: removing everything the lab made...\n');
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runLab({
      hosts,
      out: (text) => process.stdout.write(text),
      signal: interrupted.signal,
    });
    const checks = judgeLab(report);
    process.stdout.write('\nChecks:\n');
    for (const check of checks)
      process.stdout.write(
        `  ${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.ok ? '' : `: ${check.detail}`}\n`,
      );
    return checks.every((c) => c.ok) ? 0 : 1;
  } catch (error) {
    if (interrupted.signal.aborted) return 130;
    if (error instanceof LabPrerequisiteError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    process.stderr.write(`\nlab failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = await cli();

/** `reconcile`: run the scheduled repair now and show what it changed. */
import { ADMIN_PATHS, type ReconcileReportJson } from '../../shared/http/contract.js';
import { formatJson, formatReconcileReport } from '../format.js';
import type { Command } from './command.js';

export const reconcileCommand: Command = {
  words: ['reconcile'],
  args: [],
  summary: 'repair drift now: missing or stale routes, expired leases',
  description: `Runs the reconcile that otherwise runs every 5 minutes: creates missing routes,
replaces routes that point at the wrong interface, deletes routes vpc-lease owns that no
lease explains, and reclaims expired leases. Prints every change and every error.
Errors inside the report (say, one table that could not be read) do not change the exit
code: the reconcile ran, and the next one retries them; use --json and .errors to check.`,
  async run(context) {
    const { body } = await context.api().request<ReconcileReportJson>('POST', ADMIN_PATHS.reconcile);
    context.out(context.json ? formatJson(body) : formatReconcileReport(body));
  },
};

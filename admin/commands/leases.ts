/** `leases`, `lease <subnet>`, `revoke <subnet>`: who holds which subnet. */
import { ADMIN_PATHS, type LeaseJson, type LeaseListJson } from '../../shared/http/contract.js';
import { UsageError } from '../exit-codes.js';
import { formatJson, formatLease, formatLeaseList } from '../format.js';
import { parseSubnetArgument } from '../subnet-argument.js';
import type { Command } from './command.js';

export const leasesCommand: Command = {
  words: ['leases'],
  args: [],
  options: {
    limit: { type: 'string', valueName: 'n', description: 'show at most n leases (default: all)' },
  },
  summary: 'list every lease: subnet, instance, interface, expiry, routes',
  description: `Lists the leases in the API's order, following nextToken until every page is read
(or --limit leases are shown). Expiry is relative to now: "in 23h 59m", "expired 5m ago"
(expired leases stay listed until the reconcile reclaims them).
With --json, prints {"leases": [...]} with all pages merged and no nextToken.`,
  async run(context) {
    const limit = parseLimit(context.options.limit);
    const api = context.api();
    const leases: LeaseJson[] = [];
    const seenTokens = new Set<string>();
    let nextToken: string | undefined;
    do {
      const { body } = await api.request<LeaseListJson>('GET', ADMIN_PATHS.leases, { query: { nextToken } });
      leases.push(...body.leases);
      nextToken = body.nextToken;
      // A server bug that hands back a token twice would otherwise page forever.
      if (nextToken !== undefined && seenTokens.has(nextToken)) {
        throw new Error(`The API returned the page token "${nextToken}" twice; stopping.`);
      }
      if (nextToken !== undefined) seenTokens.add(nextToken);
    } while (nextToken !== undefined && (limit === undefined || leases.length < limit));

    const shown = limit === undefined ? leases : leases.slice(0, limit);
    const truncated = shown.length < leases.length || nextToken !== undefined;
    context.out(
      context.json ? formatJson({ leases: shown }) : formatLeaseList(shown, context.now, { truncated }),
    );
  },
};

export const leaseCommand: Command = {
  words: ['lease'],
  args: ['subnet'],
  summary: 'show one lease',
  description: `Shows the lease of <subnet>, written 10.244.7.0/24 or 10.244.7.0-24.
Exits 3 when no lease holds that subnet.`,
  async run(context) {
    const subnet = parseSubnetArgument(context.args[0]!);
    const { body } = await context.api().request<LeaseJson>('GET', ADMIN_PATHS.lease(subnet.key));
    context.out(context.json ? formatJson(body) : formatLease(body, context.now));
  },
};

export const revokeCommand: Command = {
  words: ['revoke'],
  args: ['subnet'],
  summary: 'revoke a lease: remove its routes, then delete it',
  description: `Revokes the lease of <subnet> (10.244.7.0/24 or 10.244.7.0-24): the control plane
removes its VPC routes, then deletes the lease. The host loses its subnet; its agent
acquires a new lease on its next renewal. Exits 3 when no lease holds that subnet.
With --json, prints the API's answer body, if any (nothing for 204 No Content).`,
  async run(context) {
    const subnet = parseSubnetArgument(context.args[0]!);
    const { body } = await context
      .api()
      .request<LeaseJson | undefined>('DELETE', ADMIN_PATHS.lease(subnet.key));
    if (context.json) {
      if (body !== undefined) context.out(formatJson(body));
      return;
    }
    const holder = body?.instanceId ? ` (held by ${body.instanceId})` : '';
    context.out(`Revoked ${subnet.text}${holder}: routes removed, lease deleted.\n`);
  },
};

function parseLimit(value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9][0-9]*$/.test(value)) {
    throw new UsageError(`--limit must be a positive whole number, not "${String(value)}".`);
  }
  return Number(value);
}

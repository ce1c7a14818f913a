/** `routes`: how full each route table is, the number that limits cluster size. */
import { ADMIN_PATHS, type RouteUsageJson } from '../../shared/http/contract.js';
import { formatJson, formatRouteUsage, ROUTE_USAGE_WARNING_PERCENT } from '../format.js';
import type { Command } from './command.js';

export const routesCommand: Command = {
  words: ['routes'],
  args: [],
  summary: 'route-table usage: limit, used, owned, foreign, blackholes, free',
  description: `Shows, per route table, its route limit and how many routes are used: owned by
vpc-lease, foreign (every other route, including the VPC's local route), blackholes
(routes whose target is gone) and free slots. A table at ${ROUTE_USAGE_WARNING_PERCENT} % or more of its limit
is marked WARNING: once it is full, new leases are refused with RouteLimitExceeded.`,
  async run(context) {
    const { body } = await context.api().request<RouteUsageJson>('GET', ADMIN_PATHS.routes);
    context.out(context.json ? formatJson(body) : formatRouteUsage(body));
  },
};

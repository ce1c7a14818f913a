/** Domain objects to the JSON of the HTTP contract. */
import { formatCidr } from '../cidr.js';
import { familyOf, type Lease } from '../lease.js';
import type { NetworkConfig } from '../network-config.js';
import type { ReconcileReport } from '../reconciler.js';
import type { LeaseJson, ReconcileReportJson } from './contract.js';

/**
 * `ipv6Subnet` and `ipv6Network` together, when the config is dual stack and the lease holds
 * its IPv6 subnet (a lease granted before dual stack was published gets it at its next renewal).
 */
export function leaseToJson(lease: Lease, config: NetworkConfig): LeaseJson {
  const ipv6 =
    config.ipv6 && lease.ipv6Subnet ? { subnet: lease.ipv6Subnet, network: config.ipv6.network } : undefined;
  return {
    subnet: formatCidr(lease.subnet),
    network: formatCidr(config.network),
    ...(ipv6 ? { ipv6Subnet: formatCidr(ipv6.subnet), ipv6Network: formatCidr(ipv6.network) } : {}),
    instanceId: lease.instanceId,
    privateIp: lease.privateIp,
    networkInterfaceId: lease.networkInterfaceId,
    expiresAt: lease.expiresAt.toISOString(),
    routes: lease.routes.flatMap((r) => {
      const destination = familyOf(r) === 6 ? lease.ipv6Subnet : lease.subnet;
      return destination
        ? [{ routeTableId: r.routeTableId, destination: formatCidr(destination), state: r.state }]
        : [];
    }),
  };
}

export const reconcileReportToJson = (report: ReconcileReport): ReconcileReportJson => ({
  startedAt: report.startedAt.toISOString(),
  changes: report.changes.map((change) => ({ ...change })),
  errors: report.errors.map((error) => ({ ...error })),
  usage: report.usage.map((table) => ({ ...table })),
});

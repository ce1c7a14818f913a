/** Domain objects to the JSON of the HTTP contract. */
import { formatCidr } from '../cidr.js';
import type { Lease } from '../lease.js';
import type { NetworkConfig } from '../network-config.js';
import type { ReconcileReport } from '../reconciler.js';
import type { LeaseJson, ReconcileReportJson } from './contract.js';

export const leaseToJson = (lease: Lease, config: NetworkConfig): LeaseJson => ({
  subnet: formatCidr(lease.subnet),
  network: formatCidr(config.network),
  instanceId: lease.instanceId,
  privateIp: lease.privateIp,
  networkInterfaceId: lease.networkInterfaceId,
  expiresAt: lease.expiresAt.toISOString(),
  routes: lease.routes.map((r) => ({ routeTableId: r.routeTableId, state: r.state })),
});

export const reconcileReportToJson = (report: ReconcileReport): ReconcileReportJson => ({
  startedAt: report.startedAt.toISOString(),
  changes: report.changes.map((change) => ({ ...change })),
  errors: report.errors.map((error) => ({ ...error })),
  usage: report.usage.map((table) => ({ ...table })),
});

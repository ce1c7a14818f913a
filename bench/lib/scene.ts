/**
 * A fresh control plane on moto for one benchmark run: moto wiped, the seed guide's VPC
 * (with a /20 for the hosts, so a thousand fit), `tables` route tables in scope (each with
 * the local route and 0.0.0.0/0 -> igw: two foreign routes), `hosts` launched instances, a
 * new lease table and a published config. The services are wired as createDependencies
 * wires them for the Lambdas.
 */
import { randomUUID } from 'node:crypto';
import { CreateRouteCommand, CreateRouteTableCommand } from '@aws-sdk/client-ec2';
import { resetMoto } from '../../scripts/lib/moto.js';
import { ensureTable, type LaunchedInstance, launchInstances, seedVpc } from '../../scripts/lib/seed.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import type { CoreLogger } from '../../shared/adapters/observability.js';
import { type NetworkConfig, parseNetworkConfig } from '../../shared/network-config.js';
import { capacity, routeTableSnapshot } from '../../shared/route-capacity.js';
import type { BenchAws } from './aws.js';

export const silentLogger: CoreLogger = { info() {}, warn() {}, error() {} };

export interface SceneOptions {
  hosts: number;
  /** route tables in scope (Backend.RouteTableID); default 1 */
  tables?: number;
  /** GRANT_INTERVAL_SECONDS of the scene's services (default: the product's, 30 s) */
  grantIntervalSeconds?: number;
  /** the flannel network config, without Backend.RouteTableID (filled in) */
  network: {
    Network: string;
    SubnetLen?: number;
    RouteLimit: number;
    /** dual stack, as flannel spells it */
    EnableIPv6?: true;
    IPv6Network?: string;
    IPv6SubnetLen?: number;
  };
}

export interface Scene {
  readonly vpcId: string;
  readonly tableName: string;
  readonly routeTableIds: readonly string[];
  readonly hosts: readonly LaunchedInstance[];
  readonly config: NetworkConfig;
  readonly leaseTtlSeconds: number;
  /** services on the counted clients of `aws` */
  readonly deps: Dependencies;
}

/** RunInstances per call; moto answers a few hundred at a time comfortably. */
const LAUNCH_BATCH = 250;

export async function freshScene(aws: BenchAws, options: SceneOptions): Promise<Scene> {
  await Promise.all([resetMoto(aws.endpoints.dynamo), resetMoto(aws.endpoints.ec2)]);
  const { ec2, dynamo } = aws.setup;
  const vpc = await seedVpc(ec2, {
    name: `vpc-lease-bench-${randomUUID().slice(0, 8)}`,
    subnetCidr: '10.0.0.0/20',
  });
  const routeTableIds = [vpc.routeTableId];
  for (let i = 1; i < (options.tables ?? 1); i++) {
    const table = await ec2.send(new CreateRouteTableCommand({ VpcId: vpc.vpcId }));
    const id = table.RouteTable!.RouteTableId!;
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: id,
        DestinationCidrBlock: '0.0.0.0/0',
        GatewayId: vpc.internetGatewayId,
      }),
    );
    routeTableIds.push(id);
  }
  const hosts: LaunchedInstance[] = [];
  while (hosts.length < options.hosts) {
    const count = Math.min(LAUNCH_BATCH, options.hosts - hosts.length);
    hosts.push(...(await launchInstances(ec2, vpc.subnetId, count)));
  }
  const tableName = `vpc-lease-bench-${randomUUID().slice(0, 8)}`;
  await ensureTable(dynamo, tableName);

  const leaseTtlSeconds = 86_400;
  const deps = createDependencies({
    environment: {
      tableName,
      vpcId: vpc.vpcId,
      leaseTtlSeconds,
      ...(options.grantIntervalSeconds !== undefined
        ? { grantIntervalSeconds: options.grantIntervalSeconds }
        : {}),
    },
    dynamo: aws.dynamo,
    ec2: aws.ec2,
    logger: silentLogger,
  });
  const { Network, SubnetLen, RouteLimit, ...ipv6 } = options.network;
  const config = parseNetworkConfig({
    Network,
    ...(SubnetLen ? { SubnetLen } : {}),
    ...ipv6,
    Backend: { Type: 'aws-vpc', RouteTableID: routeTableIds, RouteLimit },
  });
  // As `config set` publishes it: the config with the route capacity its tables leave, and
  // the route-table snapshot a deployed stack holds after it or a reconcile.
  const tables = await deps.routes.tablesInScope(config);
  const now = deps.clock.now();
  await deps.store.putConfig(
    config,
    undefined,
    now,
    capacity(config, routeTableSnapshot(config, tables, now)),
  );
  await deps.routes.refreshSnapshot(config, tables);
  return { vpcId: vpc.vpcId, tableName, routeTableIds, hosts, config, leaseTtlSeconds, deps };
}

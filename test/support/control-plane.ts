/**
 * A whole control plane on moto for integration tests: the seeded VPC, a fresh table,
 * a published config and the real services wired as the Lambdas wire them.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { type LaunchedInstance, launchInstances, type SeededVpc, seedVpc } from '../../scripts/lib/seed.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import { parseNetworkConfig } from '../../shared/network-config.js';
import { type Clock, silentLogger } from '../../shared/ports.js';
import { capacity, routeTableSnapshot } from '../../shared/route-capacity.js';
import type { MotoContext } from './aws.js';

export const quietLogger = new Logger({ serviceName: 'vpc-lease-test', logLevel: 'SILENT' });

export interface ControlPlane extends Dependencies {
  vpc: SeededVpc;
  launch(count?: number): Promise<LaunchedInstance[]>;
}

export async function createControlPlane(
  aws: MotoContext,
  options: { config?: object; clock?: Clock; leaseTtlSeconds?: number; grantIntervalSeconds?: number } = {},
): Promise<ControlPlane> {
  const vpc = await seedVpc(aws.ec2, { name: `vpc-lease-test-${Math.random().toString(36).slice(2, 8)}` });
  const tableName = await aws.newTable();
  const deps = createDependencies({
    environment: {
      tableName,
      vpcId: vpc.vpcId,
      leaseTtlSeconds: options.leaseTtlSeconds ?? 86_400,
      // Tests release and re-lease one instance at will; the grant interval's own tests set it.
      grantIntervalSeconds: options.grantIntervalSeconds ?? 0,
    },
    dynamo: aws.dynamo,
    ec2: aws.ec2,
    logger: silentLogger,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const config = parseNetworkConfig(
    options.config ?? {
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: vpc.routeTableId },
    },
  );
  // As a publish does it: the config with the route capacity its tables leave, then the snapshot.
  const tables = await deps.routes.tablesInScope(config);
  const now = deps.clock.now();
  await deps.store.putConfig(
    config,
    undefined,
    now,
    capacity(config, routeTableSnapshot(config, tables, now)),
  );
  await deps.routes.refreshSnapshot(config, tables);
  return { ...deps, vpc, launch: (count = 1) => launchInstances(aws.ec2, vpc.subnetId, count) };
}

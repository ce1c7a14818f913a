/**
 * The one composition root: builds the adapters and services from the environment, once per
 * Lambda process (module scope of functions/*), or per test plane and bench scene with other
 * clients, clock, logger and random source. The adapters are built at once; each service on
 * its first use (a getter), so a function builds only the services it reads.
 */

import type { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AdminService } from '../admin-service.js';
import type { Random } from '../allocator.js';
import { ConfigService } from '../config-service.js';
import { ImportService } from '../import-service.js';
import { InstanceEvents } from '../instance-events.js';
import { LeaseService } from '../lease-service.js';
import { type Clock, type Logger, systemClock } from '../ports.js';
import { Reconciler } from '../reconciler.js';
import { RouteWriter } from '../route-writer.js';
import { createDynamoDbClient, createEc2Client } from './aws-clients.js';
import { DynamoDbLeaseStore } from './dynamodb-lease-store.js';
import { Ec2Instances } from './ec2-instances.js';
import { Ec2RouteTables } from './ec2-route-tables.js';
import { type Environment, readEnvironment } from './environment.js';
import { coreLogger } from './observability.js';

export interface Dependencies {
  environment: Environment;
  store: DynamoDbLeaseStore;
  instances: Ec2Instances;
  routeTables: Ec2RouteTables;
  routes: RouteWriter;
  /** the services below are built on first read */
  readonly instanceEvents: InstanceEvents;
  readonly reconciler: Reconciler;
  readonly leases: LeaseService;
  readonly configs: ConfigService;
  readonly imports: ImportService;
  readonly admin: AdminService;
  clock: Clock;
  logger: Logger;
  /** the allocator's random source */
  random: Random;
}

export function createDependencies(
  options: {
    environment?: Environment;
    dynamo?: DynamoDBDocumentClient;
    ec2?: EC2Client;
    clock?: Clock;
    logger?: Logger;
    /** the allocator's random source (default Math.random); tests seed it */
    random?: Random;
  } = {},
): Dependencies {
  const environment = options.environment ?? readEnvironment();
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? coreLogger();
  const random = options.random ?? Math.random;
  const ec2 = options.ec2 ?? createEc2Client();
  const store = new DynamoDbLeaseStore(options.dynamo ?? createDynamoDbClient(), environment.tableName);
  const instances = new Ec2Instances(ec2);
  const routeTables = new Ec2RouteTables(ec2);
  const routes = new RouteWriter({
    routes: routeTables,
    instances,
    store,
    clock,
    vpcId: environment.vpcId,
    logger,
    ledger: store.capacity,
  });
  // The services each function uses are built on first use, and only then: the lease
  // function never builds the admin, import or reconcile services (#16, cold start).
  // Each is built once per Dependencies object, and shares the adapters above.
  let instanceEvents: InstanceEvents | undefined;
  let reconciler: Reconciler | undefined;
  let leases: LeaseService | undefined;
  let configs: ConfigService | undefined;
  let imports: ImportService | undefined;
  let admin: AdminService | undefined;
  const dependencies: Dependencies = {
    environment,
    store,
    instances,
    routeTables,
    routes,
    get instanceEvents() {
      instanceEvents ??= new InstanceEvents({ writer: routes, instances, store, clock, logger });
      return instanceEvents;
    },
    get reconciler() {
      reconciler ??= new Reconciler({ writer: routes, routes: routeTables, instances, store, clock, logger });
      return reconciler;
    },
    get leases() {
      leases ??= new LeaseService({
        store,
        instances,
        routes,
        clock,
        vpcId: environment.vpcId,
        leaseTtlSeconds: environment.leaseTtlSeconds,
        ...(environment.grantIntervalSeconds !== undefined
          ? { grantIntervalSeconds: environment.grantIntervalSeconds }
          : {}),
        random,
        logger,
      });
      return leases;
    },
    get configs() {
      configs ??= new ConfigService({ store, instances, routes, clock, vpcId: environment.vpcId });
      return configs;
    },
    get imports() {
      imports ??= new ImportService({
        store,
        instances,
        routes,
        configs: dependencies.configs,
        clock,
        vpcId: environment.vpcId,
        leaseTtlSeconds: environment.leaseTtlSeconds,
        logger,
      });
      return imports;
    },
    get admin() {
      admin ??= new AdminService({
        store,
        instances,
        leases: dependencies.leases,
        configs: dependencies.configs,
        routes,
        reconciler: dependencies.reconciler,
        clock,
      });
      return admin;
    },
    clock,
    logger,
    random,
  };
  return dependencies;
}

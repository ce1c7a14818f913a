/**
 * A control plane on moto whose SDK clients carry fault injection (test/support/faults.ts),
 * next to a clean twin for arranging and checking: the reliability suites' common scene.
 *
 *   - a VPC with `tables` route tables holding the foreign routes of a real VPC
 *     (ec2-fixtures.ts), plus a peering route inside Network at its first subnet (never
 *     leasable) and, in the VPC's main table (out of scope), an ENI route inside Network:
 *     neither may ever change;
 *   - `hosts` instances, a fresh lease table, a published config, a fake clock;
 *   - the real services and Lambda handlers wired on the faulty clients; moto answers
 *     CreateRoute as EC2 does (RouteAlreadyExists), so the replace path is real.
 */
import {
  CreateRouteCommand,
  DeleteRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  ModifyNetworkInterfaceAttributeCommand,
  type Route,
  StartInstancesCommand,
} from '@aws-sdk/client-ec2';
import { buildAdminHandler } from '../../functions/admin.js';
import { buildInstanceStateHandler, type InstanceStateEvent } from '../../functions/instance-state.js';
import { buildLeaseHandler } from '../../functions/lease.js';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import {
  type CallCounter,
  type ClientOptions,
  createCallCounter,
  createDynamoDbClient,
  createEc2Client,
} from '../../shared/adapters/aws-clients.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import type { DynamoDbLeaseStore } from '../../shared/adapters/dynamodb-lease-store.js';
import { parseCidr, toSubnetKey } from '../../shared/cidr.js';
import type { ErrorJson, LeaseJson } from '../../shared/http/contract.js';
import { type NetworkConfig, parseNetworkConfig, toFlannelJson } from '../../shared/network-config.js';
import { type Clock, silentLogger } from '../../shared/ports.js';
import { capacity, routeTableSnapshot } from '../../shared/route-capacity.js';
import { type MotoContext, TEST_REGION } from './aws.js';
import { quietLogger } from './control-plane.js';
import { createNetworkFixture, launchHosts, type NetworkFixture } from './ec2-fixtures.js';
import { hostArn, httpEvent, lambdaContext, OPERATOR_ARN, TEST_HOSTS } from './events.js';
import { attachFaults, createFaultSwitch, type FaultSwitch, seededRandom, Turnstile } from './faults.js';
import {
  checkInvariants,
  type ForeignRouteSnapshot,
  findViolations,
  InvariantViolation,
  type ObservedState,
  snapshotForeignRoutes,
} from './invariants.js';

/** Foreign routes in the fullest fixture table: local, 0.0.0.0/0, 192.168/16, 172.16/12, 10.244.0.0/24. */
export const FOREIGN_IN_FULLEST = 5;

/** An HTTP answer of the lease function, its body parsed. */
export interface Answer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: (Partial<LeaseJson> & Partial<ErrorJson>) | undefined;
}

export interface Host extends LaunchedInstance {
  state: 'running' | 'stopped' | 'terminated';
}

export interface FaultyPlane {
  fixture: NetworkFixture;
  /** the config in force: `check()` reads it; `syncConfig()` refreshes it from the table */
  config: NetworkConfig;
  tableName: string;
  vpcId: string;
  /** the tables in scope */
  routeTableIds: readonly string[];
  hosts: Host[];
  clock: Clock & { advance(seconds: number): void };
  foreignBefore: ForeignRouteSnapshot;
  /** destinations the foreign-route writer claimed (invariant 5: no grant on them afterwards) */
  foreignClaims: Set<string>;
  /** set `faults.policy` to inject; every injected fault is recorded in `faults.injected` */
  faults: FaultSwitch;
  turnstile: Turnstile;
  /** counts the faulty clients' requests, each attempt included */
  counter: CallCounter;
  store: DynamoDbLeaseStore;
  leases: Dependencies['leases'];
  routes: Dependencies['routes'];
  reconciler: Dependencies['reconciler'];
  cleanStore: DynamoDbLeaseStore;
  cleanRoutes: Dependencies['routes'];
  cleanReconciler: Dependencies['reconciler'];
  putLease(host: LaunchedInstance, body?: Record<string, unknown>): Promise<Answer>;
  deleteLease(host: LaunchedInstance): Promise<Answer>;
  /** PUT or DELETE /v1/lease naming `host`'s instance, from a session that is not its instance profile's */
  impersonate(host: LaunchedInstance, method: 'PUT' | 'DELETE', userArn: string): Promise<Answer>;
  /**
   * Someone else's route (to the internet gateway) at `destination` in the first table, written
   * with the clean client; the foreign-route snapshot of invariant 4 takes it in. False when the
   * table already routes that destination.
   */
  writeForeignRoute(destination: string): Promise<boolean>;
  /** DELETE /v1/admin/leases/{subnet} (subnet as a CIDR) */
  revokeLease(subnet: string): Promise<Answer>;
  /** PUT /v1/admin/config with the config's Backend.RouteLimit changed */
  publishRouteLimit(routeLimit: number): Promise<Answer>;
  /** reads the published config back into `config` */
  syncConfig(): Promise<NetworkConfig>;
  stateEvent(event: InstanceStateEvent): Promise<unknown>;
  /** checkInvariants on the clean clients, against the foreign routes at creation */
  check(settled?: boolean): Promise<ObservedState>;
  /**
   * The same invariants on a state read before (no moto call), at the clock's time now: for a
   * step known to have changed neither the lease table nor the route tables (the clock moved).
   */
  checkState(state: ObservedState): void;
  dispose(): void;
}

export interface FaultyPlaneOptions {
  tables?: number;
  hosts?: number;
  /** the network config, given the fixture's route tables (default: 10.244.0.0/16 over them) */
  config?: (routeTableIds: readonly string[]) => unknown;
  leaseTtlSeconds?: number;
  /** GRANT_INTERVAL_SECONDS of the lease service; 0 (no limit) unless a scenario exercises it */
  grantIntervalSeconds?: number;
  /** seeds the turnstile and the allocator's choices */
  seed?: number;
  /** SDK attempts per call on the faulty clients (default 2) */
  maxAttempts?: number;
  /** a network built before (createFaultyNetwork) and reset since; `tables` and `hosts` are its */
  network?: FaultyNetwork;
  /**
   * The faulty clients' backoff between SDK attempts (default: the SDK's own, up to 1 s after
   * a throttle). A property running many scenes gives a shorter one: which attempts run, and
   * in which order (the turnstile), does not depend on how long each waits.
   */
  retryBackoff?: ClientOptions['retryBackoff'];
}

let eventCounter = 0;

export const stateChange = (instanceId: string, state: string): InstanceStateEvent => ({
  version: '0',
  id: `evt-${++eventCounter}`,
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '123456789012',
  time: new Date().toISOString(),
  region: TEST_REGION,
  resources: [`arn:aws:ec2:${TEST_REGION}:123456789012:instance/${instanceId}`],
  detail: { 'instance-id': instanceId, state },
});

/**
 * The EC2 side of a faulty plane, apart so that a property running many scenes builds it once
 * (createFaultyNetwork) and puts it back between runs (resetFaultyNetwork) instead of resetting
 * moto: each scene still gets its own lease table, clock, faults and services.
 */
export interface FaultyNetwork {
  readonly fixture: NetworkFixture;
  /** the hosts; a scene mutates their `state`, and the reset replaces the terminated ones */
  readonly hosts: Host[];
  /** the routes of the tables in scope as built: destination -> target */
  readonly routesAtStart: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

const targetKey = (route: Route): string =>
  route.NetworkInterfaceId ?? route.InstanceId ?? route.GatewayId ?? route.VpcPeeringConnectionId ?? '?';

async function routesOfTables(aws: MotoContext, routeTableIds: readonly string[]) {
  const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [...routeTableIds] }));
  return new Map(
    (out.RouteTables ?? []).map((t) => [
      t.RouteTableId!,
      new Map(
        (t.Routes ?? []).flatMap((r) =>
          r.DestinationCidrBlock ? [[r.DestinationCidrBlock, targetKey(r)]] : [],
        ),
      ) as Map<string, string>,
    ]),
  );
}

export async function createFaultyNetwork(
  aws: MotoContext,
  options: { tables?: number; hosts?: number } = {},
): Promise<FaultyNetwork> {
  const fixture = await createNetworkFixture(aws.ec2, { tables: options.tables ?? 2 });
  await aws.ec2.send(
    new CreateRouteCommand({
      RouteTableId: fixture.routeTableIds[0],
      DestinationCidrBlock: '10.244.0.0/24',
      VpcPeeringConnectionId: fixture.peeringConnectionId,
    }),
  );
  const main = await aws.ec2.send(
    new DescribeRouteTablesCommand({
      Filters: [
        { Name: 'vpc-id', Values: [fixture.vpcId] },
        { Name: 'association.main', Values: ['true'] },
      ],
    }),
  );
  await aws.ec2.send(
    new CreateRouteCommand({
      RouteTableId: main.RouteTables![0]!.RouteTableId!,
      DestinationCidrBlock: '10.244.5.0/24',
      NetworkInterfaceId: fixture.applianceEniId,
    }),
  );
  const launched = await launchHosts(aws.ec2, fixture, options.hosts ?? 8);
  const hosts: Host[] = launched.map((h) => ({ ...h, state: 'running' }));
  return { fixture, hosts, routesAtStart: await routesOfTables(aws, fixture.routeTableIds) };
}

/**
 * Puts the network back as createFaultyNetwork built it: every route a scene added to the
 * tables in scope goes (lease routes, foreign routes it wrote), stopped hosts run again,
 * terminated ones are replaced by new instances, and every host's source/destination check
 * is on again. A route of the start that a scene changed is an invariant its check reported.
 */
export async function resetFaultyNetwork(aws: MotoContext, network: FaultyNetwork): Promise<void> {
  const now = await routesOfTables(aws, network.fixture.routeTableIds);
  for (const [routeTableId, routes] of now) {
    const start = network.routesAtStart.get(routeTableId) ?? new Map<string, string>();
    for (const destination of routes.keys()) {
      if (!start.has(destination)) {
        await aws.ec2.send(
          new DeleteRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: destination }),
        );
      }
    }
  }
  const stopped = network.hosts.filter((h) => h.state === 'stopped').map((h) => h.instanceId);
  if (stopped.length > 0) await aws.ec2.send(new StartInstancesCommand({ InstanceIds: stopped }));
  const gone = network.hosts.flatMap((h, i) => (h.state === 'terminated' ? [i] : []));
  const fresh = gone.length > 0 ? await launchHosts(aws.ec2, network.fixture, gone.length) : [];
  gone.forEach((index, i) => {
    network.hosts[index] = { ...fresh[i]!, state: 'running' };
  });
  for (const h of network.hosts) h.state = 'running';
  // One read for all the hosts' ENIs; a write only for those a scene turned the check off on.
  const enis = await aws.ec2.send(
    new DescribeNetworkInterfacesCommand({
      NetworkInterfaceIds: network.hosts.map((h) => h.networkInterfaceId),
    }),
  );
  for (const eni of enis.NetworkInterfaces ?? []) {
    if (eni.SourceDestCheck !== false) continue;
    await aws.ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: eni.NetworkInterfaceId,
        SourceDestCheck: { Value: true },
      }),
    );
  }
}

export async function createFaultyPlane(
  aws: MotoContext,
  options: FaultyPlaneOptions = {},
): Promise<FaultyPlane> {
  const network = options.network ?? (await createFaultyNetwork(aws, options));
  const { fixture, hosts } = network;
  const tableName = await aws.newTable();
  const config = parseNetworkConfig(
    options.config?.(fixture.routeTableIds) ?? {
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: [...fixture.routeTableIds] },
    },
  );

  let now = Date.UTC(2026, 5, 1);
  const clock = {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };

  const seed = options.seed ?? 1;
  const faults = createFaultSwitch();
  const turnstile = new Turnstile(seededRandom(seed ^ 0x5eed));
  const counter = createCallCounter();
  const clientOptions = {
    region: TEST_REGION,
    endpoint: aws.moto.endpoint,
    maxAttempts: options.maxAttempts ?? 2,
    counter,
    ...(options.retryBackoff ? { retryBackoff: options.retryBackoff } : {}),
  };
  const ec2 = createEc2Client(clientOptions);
  attachFaults(ec2, 'EC2', faults, turnstile);
  const dynamo = createDynamoDbClient(clientOptions);
  attachFaults(dynamo, 'DynamoDB', faults, turnstile);

  // The Lambdas' composition root, on the faulty clients; a clean twin on the clean ones.
  const environment = {
    tableName,
    vpcId: fixture.vpcId,
    leaseTtlSeconds: options.leaseTtlSeconds ?? 3600,
    // 0 unless a scenario exercises the grant interval: hosts here re-lease at will
    grantIntervalSeconds: options.grantIntervalSeconds ?? 0,
  };
  const deps = createDependencies({
    environment,
    dynamo,
    ec2,
    clock,
    logger: silentLogger,
    random: seededRandom(seed + 7),
  });
  const { store, routes, reconciler, instanceEvents, leases, admin: adminService } = deps;
  const clean = createDependencies({
    environment,
    dynamo: aws.dynamo,
    ec2: aws.ec2,
    clock,
    logger: silentLogger,
  });
  const { store: cleanStore, routes: cleanRoutes, reconciler: cleanReconciler } = clean;
  // As a publish does it: the config with the route capacity its tables leave, then the snapshot.
  const tables = await cleanRoutes.tablesInScope(config);
  const at = clock.now();
  await cleanStore.putConfig(config, undefined, at, capacity(config, routeTableSnapshot(config, tables, at)));
  await cleanRoutes.refreshSnapshot(config, tables);
  const foreignBefore = await snapshotForeignRoutes({ ec2: aws.ec2, vpcId: fixture.vpcId, config });

  const adminHandler = buildAdminHandler({ admin: adminService, hosts: TEST_HOSTS, logger: quietLogger });
  const leaseHandler = buildLeaseHandler({ leases, hosts: TEST_HOSTS, logger: quietLogger });
  const stateHandler = buildInstanceStateHandler({ instanceEvents, logger: quietLogger });
  const http = async (event: ReturnType<typeof httpEvent>, handler = leaseHandler): Promise<Answer> => {
    const result = await handler(event, lambdaContext());
    return {
      statusCode: result.statusCode ?? 200,
      headers: result.headers ?? {},
      body: result.body ? JSON.parse(result.body) : undefined,
    };
  };

  const plane: FaultyPlane = {
    fixture,
    config,
    tableName,
    vpcId: fixture.vpcId,
    routeTableIds: fixture.routeTableIds,
    hosts,
    clock,
    foreignBefore,
    foreignClaims: new Set<string>(),
    faults,
    turnstile,
    counter,
    store,
    leases,
    routes,
    reconciler,
    cleanStore,
    cleanRoutes,
    cleanReconciler,
    putLease: (host, body) =>
      http(
        httpEvent({
          method: 'PUT',
          path: '/v1/lease',
          body: body ?? { privateIp: host.privateIp },
          userArn: hostArn(host.instanceId),
        }),
      ),
    deleteLease: (host) =>
      http(httpEvent({ method: 'DELETE', path: '/v1/lease', userArn: hostArn(host.instanceId) })),
    impersonate: (host, method, userArn) =>
      http(
        httpEvent({
          method,
          path: '/v1/lease',
          ...(method === 'PUT' ? { body: { privateIp: host.privateIp } } : {}),
          userArn,
        }),
      ),
    async writeForeignRoute(destination) {
      try {
        await aws.ec2.send(
          new CreateRouteCommand({
            RouteTableId: fixture.routeTableIds[0],
            DestinationCidrBlock: destination,
            GatewayId: fixture.internetGatewayId,
          }),
        );
      } catch (error) {
        if ((error as { name?: string }).name === 'RouteAlreadyExists') return false;
        throw error;
      }
      plane.foreignClaims.add(destination);
      plane.foreignBefore = await snapshotForeignRoutes({
        ec2: aws.ec2,
        vpcId: fixture.vpcId,
        config: plane.config,
      });
      return true;
    },
    revokeLease: (subnet) => {
      const key = toSubnetKey(parseCidr(subnet));
      return http(
        httpEvent({
          method: 'DELETE',
          path: `/v1/admin/leases/${key}`,
          route: '/v1/admin/leases/{subnet}',
          pathParameters: { subnet: key },
          userArn: OPERATOR_ARN,
        }),
        adminHandler,
      );
    },
    publishRouteLimit: (routeLimit) => {
      const json = toFlannelJson(plane.config);
      return http(
        httpEvent({
          method: 'PUT',
          path: '/v1/admin/config',
          body: { ...json, Backend: { ...json.Backend, RouteLimit: routeLimit } },
          userArn: OPERATOR_ARN,
        }),
        adminHandler,
      );
    },
    async syncConfig() {
      const stored = await cleanStore.getConfig();
      plane.config = stored!.config;
      return plane.config;
    },
    stateEvent: (event) => stateHandler(event, lambdaContext('vpc-lease-test-instanceState')),
    check: (settled = false) =>
      checkInvariants({
        store: { client: aws.dynamo, tableName },
        ec2: aws.ec2,
        config: plane.config,
        now: clock.now(),
        vpcId: fixture.vpcId,
        foreignBefore: plane.foreignBefore,
        settled,
      }),
    checkState(state) {
      const violations = findViolations(state, {
        config: plane.config,
        now: clock.now(),
        foreignBefore: plane.foreignBefore,
      });
      if (violations.length > 0) throw new InvariantViolation(violations);
    },
    dispose() {
      ec2.destroy();
      dynamo.destroy();
    },
  };
  return plane;
}

import {
  CreateRouteCommand,
  DescribeRouteTablesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInstanceStateHandler, type InstanceStateEvent } from '../../functions/instance-state.js';
import { buildReconcileHandler } from '../../functions/reconcile.js';
import { formatCidr } from '../../shared/cidr.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane, quietLogger } from '../support/control-plane.js';
import { instanceStateEvent, lambdaContext } from '../support/events.js';

const stateChange = (instanceId: string, state: string, id = `evt-${state}`): InstanceStateEvent =>
  instanceStateEvent(instanceId, state, id);

describe('instanceState and reconcile functions through the middy chain (moto)', () => {
  const aws = useMoto();
  let plane: ControlPlane;
  let onEvent: (event: InstanceStateEvent) => Promise<unknown>;
  let reconcile: () => Promise<Awaited<ReturnType<ReturnType<typeof buildReconcileHandler>>>>;

  beforeAll(async () => {
    plane = await createControlPlane(aws);
    const stateHandler = buildInstanceStateHandler({
      instanceEvents: plane.instanceEvents,
      logger: quietLogger,
    });
    onEvent = (event) => stateHandler(event, lambdaContext('vpc-lease-test-instanceState') as Context);
    const reconcileHandler = buildReconcileHandler({
      reconciler: plane.reconciler,
      configs: plane.configs,
      logger: quietLogger,
    });
    reconcile = () => reconcileHandler({}, lambdaContext('vpc-lease-test-reconcile'));
  });

  const leasedRoutes = async () => {
    const out = await aws.ec2.send(
      new DescribeRouteTablesCommand({ RouteTableIds: [plane.vpc.routeTableId] }),
    );
    return (out.RouteTables?.[0]?.Routes ?? []).filter((r) => r.DestinationCidrBlock?.startsWith('10.244.'));
  };

  it('removes route and lease on `terminated`, and a late duplicate `running` brings nothing back', async () => {
    const [host] = await plane.launch();
    const { lease } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    expect((await leasedRoutes()).map((r) => r.NetworkInterfaceId)).toContain(host!.networkInterfaceId);

    await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [host!.instanceId] }));
    expect(await onEvent(stateChange(host!.instanceId, 'terminated'))).toMatchObject({ action: 'released' });
    expect(await onEvent(stateChange(host!.instanceId, 'terminated', 'evt-dup'))).toMatchObject({
      action: 'none',
    });
    expect(await onEvent(stateChange(host!.instanceId, 'running', 'evt-late'))).toMatchObject({
      action: 'none',
    });

    expect(await plane.store.getByInstance(host!.instanceId)).toBeUndefined();
    expect((await leasedRoutes()).map((r) => r.DestinationCidrBlock)).not.toContain(formatCidr(lease.subnet));
    expect((await leasedRoutes()).some((r) => r.NetworkInterfaceId === host!.networkInterfaceId)).toBe(false);
  });

  it('treats an unknown instance and a malformed event as no-ops, not errors', async () => {
    expect(await onEvent(stateChange('i-0123456789abcdef0', 'terminated'))).toMatchObject({ action: 'none' });
    const malformed = {
      ...stateChange('i-0123456789abcdef0', 'running'),
      detail: { 'instance-id': '../etc', state: 7 },
    };
    expect(await onEvent(malformed)).toEqual({ action: 'none', reason: 'malformed event' });
  });

  it('reconcile removes a route inside the network with no lease, reports it and the table usage', async () => {
    const [host] = await plane.launch();
    await aws.ec2.send(
      new CreateRouteCommand({
        RouteTableId: plane.vpc.routeTableId,
        DestinationCidrBlock: '10.244.200.0/24',
        NetworkInterfaceId: host!.networkInterfaceId,
      }),
    );
    const report = await reconcile();
    expect(report.changes).toContainEqual(
      expect.objectContaining({
        action: 'route-deleted',
        routeTableId: plane.vpc.routeTableId,
        subnet: '10.244.200.0/24',
      }),
    );
    expect((await leasedRoutes()).map((r) => r.DestinationCidrBlock)).not.toContain('10.244.200.0/24');
    expect(report.usage).toContainEqual(
      expect.objectContaining({ routeTableId: plane.vpc.routeTableId, limit: 50, foreign: 2 }),
    );
  });
});

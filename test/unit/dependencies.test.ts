/**
 * The composition root builds the adapters at once and each service on its first read (#16:
 * the lease function does not build the admin services). Built lazily or not, a service read
 * twice is the same object, and the services that use one another share it. No request is sent.
 */
import { describe, expect, it } from 'vitest';
import { createDynamoDbClient, createEc2Client } from '../../shared/adapters/aws-clients.js';
import { createDependencies } from '../../shared/adapters/dependencies.js';

const build = () =>
  createDependencies({
    environment: { tableName: 'vpc-lease-test', vpcId: 'vpc-0123456789abcdef0', leaseTtlSeconds: 3600 },
    dynamo: createDynamoDbClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }),
    ec2: createEc2Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }),
    logger: { info() {}, warn() {}, error() {} },
  });

describe('createDependencies: one composition root, services built on first use', () => {
  it('gives the same service object on every read', () => {
    const deps = build();
    for (const name of ['leases', 'admin', 'imports', 'configs', 'reconciler', 'instanceEvents'] as const) {
      expect(deps[name]).toBe(deps[name]);
    }
  });

  it('shares the lease, config and reconcile services with the admin and import services', () => {
    const deps = build();
    const admin = deps.admin as unknown as { deps: Record<string, unknown> };
    const imports = deps.imports as unknown as { deps: Record<string, unknown> };
    expect(admin.deps.leases).toBe(deps.leases);
    expect(admin.deps.configs).toBe(deps.configs);
    expect(admin.deps.reconciler).toBe(deps.reconciler);
    expect(imports.deps.configs).toBe(deps.configs);
  });
});

// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub templates, not JS templates
/**
 * The deployable product is the CloudFormation template: `serverless package` runs here
 * offline (dummy credentials, no AWS call) and the template is asserted as a security
 * reviewer and an on-call engineer would read it. The IAM expectations are explicit, action
 * by action: a new permission fails this file until someone has looked at it.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TTL_ATTRIBUTE, tableDefinition } from '../../shared/adapters/dynamodb-schema.js';
import { METRIC_DIMENSIONS, METRIC_NAMES } from '../../shared/adapters/observability.js';

const run = promisify(execFile);
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const serverlessBin = createRequire(import.meta.url).resolve('osls/bin/serverless.js');

type Json = any;
interface Packaged {
  /** the throw-away service directory */
  dir: string;
  /** the package: template, zips, serverless-state.json */
  out: string;
  template: Json;
}

const FUNCTIONS = {
  lease: { logicalId: 'LeaseLambdaFunction', role: 'LeaseFunctionRole', file: 'functions/lease.handler' },
  admin: { logicalId: 'AdminLambdaFunction', role: 'AdminFunctionRole', file: 'functions/admin.handler' },
  instanceState: {
    logicalId: 'InstanceStateLambdaFunction',
    role: 'InstanceStateFunctionRole',
    file: 'functions/instance-state.handler',
  },
  reconcile: {
    logicalId: 'ReconcileLambdaFunction',
    role: 'ReconcileFunctionRole',
    file: 'functions/reconcile.handler',
  },
} as const;
type FunctionName = keyof typeof FUNCTIONS;

const ROUTE_TABLES = ['rtb-0123456789abcdef0', 'rtb-0fedcba9876543210'];
const ALARM_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:on-call';

/**
 * Packages in a throw-away service directory: serverless.yml copied, the sources linked.
 * osls clears and rewrites `<service>/.serverless` while it packages, so two packages in
 * the repository itself (these three, the benchmarks, a developer's) would trip over each other.
 */
const serviceDirs: string[] = [];

async function serverlessPackage(stage: string, params: string[] = []): Promise<Packaged> {
  const dir = await mkdtemp(join(tmpdir(), `vpc-lease-package-${stage}-`));
  serviceDirs.push(dir);
  for (const entry of ['functions', 'shared', 'scripts', 'node_modules', 'package.json', 'tsconfig.json']) {
    await symlink(join(repoRoot, entry), join(dir, entry));
  }
  await copyFile(join(repoRoot, 'serverless.yml'), join(dir, 'serverless.yml'));
  const out = join(dir, 'package');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    // dummy credentials: packaging must not need real ones (and cannot reach AWS from here)
    AWS_ACCESS_KEY_ID: 'AKIAPACKAGEONLY',
    AWS_SECRET_ACCESS_KEY: 'package-only',
  };
  const args = [serverlessBin, 'package', '--stage', stage, '--package', out];
  for (const p of params) args.push('--param', p);
  try {
    await run(process.execPath, args, { cwd: dir, env, timeout: 90_000, maxBuffer: 10 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`serverless package --stage ${stage} failed:\n${stdout}\n${stderr}`, { cause: error });
  }
  const template = JSON.parse(await readFile(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
  return { dir, out, template };
}

const sub = (text: string) => ({ 'Fn::Sub': text });
const tableArn = { 'Fn::GetAtt': ['LeaseTable', 'Arn'] };
const queueArn = { 'Fn::GetAtt': ['FailedEventsQueue', 'Arn'] };
const vpcArn = sub('arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/${VpcId}');
const routeTableArn = (id: string) =>
  sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:route-table/${id}`);

/** Every statement each function role must have, and nothing else. */
function expectedStatements(
  stage: string,
  fn: FunctionName,
  routeTables: readonly string[] | undefined,
): Json[] {
  const logs = {
    Sid: 'OwnLogGroup',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: sub(
      `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/vpc-lease-${stage}-${fn}:*`,
    ),
  };
  const tableRead = {
    Sid: 'TableRead',
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Scan'],
    Resource: tableArn,
  };
  const itemWrites = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
  const leaseAndSnapshotWrite = {
    Sid: 'LeaseAndSnapshotWrite',
    Effect: 'Allow',
    Action: itemWrites,
    Resource: tableArn,
    Condition: {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': ['SUBNET#*', 'INSTANCE#*', 'CAPACITY', 'TABLES', 'GRANT#*'],
      },
    },
  };
  const leaseItemsWrite = {
    Sid: 'LeaseItemsWrite',
    Effect: 'Allow',
    Action: itemWrites,
    Resource: tableArn,
    Condition: {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SUBNET#*', 'INSTANCE#*', 'CAPACITY'] },
    },
  };
  const configNeverWritten = {
    Sid: 'ConfigNeverWritten',
    Effect: 'Deny',
    Action: itemWrites,
    Resource: tableArn,
    Condition: { 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': ['CONFIG'] } },
  };
  const allItemsWrite = { Sid: 'AllItemsWrite', Effect: 'Allow', Action: itemWrites, Resource: tableArn };
  const describe = (extra: string[] = []) => ({
    Sid: 'Ec2Describe',
    Effect: 'Allow',
    Action: ['ec2:DescribeInstances', 'ec2:DescribeRouteTables', ...extra],
    Resource: '*',
  });
  const routeMutations = {
    Sid: 'RouteMutations',
    Effect: 'Allow',
    Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute', 'ec2:DeleteRoute'],
    Resource: (routeTables ?? ['*']).map(routeTableArn),
    // Without named tables, only the VPC's tables tagged vpc-lease=managed (never every table).
    Condition: routeTables
      ? { ArnEquals: { 'ec2:Vpc': vpcArn } }
      : { ArnEquals: { 'ec2:Vpc': vpcArn }, StringEquals: { 'aws:ResourceTag/vpc-lease': 'managed' } },
  };
  const sourceDestCheck = {
    Sid: 'SourceDestCheck',
    Effect: 'Allow',
    Action: 'ec2:ModifyNetworkInterfaceAttribute',
    Resource: sub('arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*'),
    Condition: { ArnEquals: { 'ec2:Vpc': vpcArn } },
  };
  const failedEvents = {
    Sid: 'FailedEventsDestination',
    Effect: 'Allow',
    Action: 'sqs:SendMessage',
    Resource: queueArn,
  };

  switch (fn) {
    case 'lease':
      return [
        logs,
        tableRead,
        leaseAndSnapshotWrite,
        configNeverWritten,
        describe(),
        routeMutations,
        sourceDestCheck,
      ];
    case 'admin':
      return [
        logs,
        tableRead,
        allItemsWrite,
        describe(['ec2:DescribeVpcs']),
        routeMutations,
        sourceDestCheck,
      ];
    case 'instanceState':
      return [
        logs,
        tableRead,
        leaseItemsWrite,
        configNeverWritten,
        describe(),
        routeMutations,
        sourceDestCheck,
        failedEvents,
      ];
    case 'reconcile':
      return [
        logs,
        tableRead,
        leaseAndSnapshotWrite,
        configNeverWritten,
        describe(),
        routeMutations,
        sourceDestCheck,
        failedEvents,
      ];
  }
}

const resourcesOfType = (template: Json, type: string): [string, Json][] =>
  Object.entries(template.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);

const roleStatements = (template: Json, role: string): Json[] => {
  const policies = template.Resources[role].Properties.Policies as Json[];
  expect(policies).toHaveLength(1);
  return policies[0].PolicyDocument.Statement;
};

const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

describe('the CloudFormation template (serverless package, offline)', () => {
  let prod: Packaged;
  let scoped: Packaged;
  let invalidRouteTables: Error | undefined;

  beforeAll(async () => {
    // Each package takes a few seconds; all three at once keep the file well under a minute.
    [prod, scoped, invalidRouteTables] = await Promise.all([
      serverlessPackage('prod'),
      serverlessPackage('staging', [
        'vpcId=vpc-0123456789abcdef0',
        `routeTableIds=${ROUTE_TABLES.join(',')}`,
        `alarmTopicArn=${ALARM_TOPIC}`,
        'utilisationAlarmPercent=75',
        'hostRoleNames=legacy-nodes,ci-nodes',
        'apiThrottleRate=20',
        'apiThrottleBurst=40',
        'leaseReservedConcurrency=4',
      ]),
      serverlessPackage('broken', ['routeTableIds=rtb-0123456789abcdef0,not-a-table']).then(
        () => undefined,
        (error: Error) => error,
      ),
    ]);
  }, 120_000);

  afterAll(async () => {
    for (const dir of serviceDirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  describe('HTTP API', () => {
    it('exposes exactly the routes of docs/api.md, each behind AWS_IAM and routed to its function', () => {
      const integrationOf = (target: Json) => target['Fn::Join'][1][1].Ref as string;
      const routes = resourcesOfType(prod.template, 'AWS::ApiGatewayV2::Route').map(([, r]) => ({
        key: r.Properties.RouteKey,
        auth: r.Properties.AuthorizationType,
        integration: integrationOf(r.Properties.Target),
      }));
      const host = (key: string) => ({ key, auth: 'AWS_IAM', integration: 'HttpApiIntegrationLease' });
      const admin = (key: string) => ({ key, auth: 'AWS_IAM', integration: 'HttpApiIntegrationAdmin' });
      expect(routes).toEqual(
        expect.arrayContaining([
          host('GET /v1/config'),
          host('PUT /v1/lease'),
          host('DELETE /v1/lease'),
          admin('GET /v1/admin/leases'),
          admin('GET /v1/admin/leases/{subnet}'),
          admin('DELETE /v1/admin/leases/{subnet}'),
          admin('GET /v1/admin/routes'),
          admin('GET /v1/admin/config'),
          admin('PUT /v1/admin/config'),
          admin('POST /v1/admin/reconcile'),
          admin('POST /v1/admin/import'),
          // every other method of a known path reaches its function, which answers 405
          host('ANY /v1/config'),
          host('ANY /v1/lease'),
          admin('ANY /v1/admin/leases'),
          admin('ANY /v1/admin/leases/{subnet}'),
          admin('ANY /v1/admin/routes'),
          admin('ANY /v1/admin/config'),
          admin('ANY /v1/admin/reconcile'),
          admin('ANY /v1/admin/import'),
        ]),
      );
      expect(routes).toHaveLength(19);
      for (const route of routes) expect(route.auth).toBe('AWS_IAM');
    });

    it('uses payload format 2.0 and writes access logs with the caller ARN', () => {
      for (const [, integration] of resourcesOfType(prod.template, 'AWS::ApiGatewayV2::Integration')) {
        expect(integration.Properties.PayloadFormatVersion).toBe('2.0');
      }
      const stage = prod.template.Resources.HttpApiStage.Properties;
      expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({
        userArn: '$context.identity.userArn',
        routeKey: '$context.routeKey',
        status: '$context.status',
      });
    });
  });

  describe('functions', () => {
    it('run on nodejs22.x, arm64, 1024 MB, with their own role and the documented environment', () => {
      for (const [name, fn] of Object.entries(FUNCTIONS)) {
        const props = prod.template.Resources[fn.logicalId].Properties;
        expect(props.FunctionName).toBe(`vpc-lease-prod-${name}`);
        expect(props.Handler).toBe(fn.file);
        expect(props.Runtime).toBe('nodejs22.x');
        expect(props.Architectures).toEqual(['arm64']);
        expect(props.MemorySize).toBe(1024);
        expect(props.Role).toEqual({ 'Fn::GetAtt': [fn.role, 'Arn'] });
        expect(props.Environment.Variables).toEqual({
          TABLE_NAME: 'vpc-lease-prod',
          VPC_ID: { Ref: 'VpcId' },
          LEASE_TTL_SECONDS: '86400',
          GRANT_INTERVAL_SECONDS: '30',
          ACCOUNT_ID: { Ref: 'AWS::AccountId' },
          HOST_ROLE_NAMES: { 'Fn::Join': [',', [{ Ref: 'HostRole' }, { Ref: 'HostRoleNames' }]] },
          LOG_LEVEL: 'INFO',
          POWERTOOLS_SERVICE_NAME: 'vpc-lease',
          POWERTOOLS_METRICS_NAMESPACE: 'VpcLease',
          NODE_OPTIONS: '--enable-source-maps',
        });
      }
      expect(resourcesOfType(prod.template, 'AWS::Lambda::Function')).toHaveLength(4);
    });

    it('bounds the concurrency of the EC2-mutating background functions', () => {
      const reserved = (fn: FunctionName) =>
        prod.template.Resources[FUNCTIONS[fn].logicalId].Properties.ReservedConcurrentExecutions;
      expect(reserved('instanceState')).toBe(5);
      expect(reserved('reconcile')).toBe(1);
      expect(reserved('lease')).toBe(10);
    });

    it('throttles the whole HTTP API from the stage parameters', () => {
      // `--param` values reach the template as strings, which CloudFormation reads as numbers.
      const settings = (template: typeof prod.template) => {
        const { DetailedMetricsEnabled, ThrottlingRateLimit, ThrottlingBurstLimit } =
          template.Resources.HttpApiStage.Properties.DefaultRouteSettings;
        return {
          DetailedMetricsEnabled,
          ThrottlingRateLimit: Number(ThrottlingRateLimit),
          ThrottlingBurstLimit: Number(ThrottlingBurstLimit),
        };
      };
      expect(settings(prod.template)).toEqual({
        DetailedMetricsEnabled: true,
        ThrottlingRateLimit: 50,
        ThrottlingBurstLimit: 100,
      });
      expect(settings(scoped.template)).toEqual({
        DetailedMetricsEnabled: true,
        ThrottlingRateLimit: 20,
        ThrottlingBurstLimit: 40,
      });
      expect(scoped.template.Resources.LeaseLambdaFunction.Properties.ReservedConcurrentExecutions).toBe(4);
    });

    it('keeps every log group for the configured retention', () => {
      const groups = resourcesOfType(prod.template, 'AWS::Logs::LogGroup');
      expect(groups.map(([id]) => id).sort()).toEqual(
        [
          'AdminLogGroup',
          'HttpApiLogGroup',
          'InstanceStateLogGroup',
          'LeaseLogGroup',
          'ReconcileLogGroup',
        ].sort(),
      );
      for (const [, group] of groups) expect(group.Properties.RetentionInDays).toBe(90);
    });

    it('ships one minified ESM bundle per function', async () => {
      for (const name of Object.keys(FUNCTIONS)) {
        const zip = await stat(join(prod.out, `${name}.zip`));
        expect(zip.size).toBeGreaterThan(10_000);
      }
      const state = JSON.parse(await readFile(join(prod.out, 'serverless-state.json'), 'utf8'));
      expect(state.service.custom.esbuild).toMatchObject({
        bundle: true,
        minify: true,
        sourcemap: true,
        format: 'esm',
        outputFileExtension: '.mjs',
        target: 'node22',
        exclude: [],
      });
    });
  });

  describe('least privilege', () => {
    for (const fn of Object.keys(FUNCTIONS) as FunctionName[]) {
      it(`gives ${fn} exactly the actions and resources it uses (VPC-wide route scope)`, () => {
        expect(roleStatements(prod.template, FUNCTIONS[fn].role)).toEqual(
          expectedStatements('prod', fn, undefined),
        );
      });

      it(`gives ${fn} route changes on the configured route tables only, when they are given`, () => {
        expect(roleStatements(scoped.template, FUNCTIONS[fn].role)).toEqual(
          expectedStatements('staging', fn, ROUTE_TABLES),
        );
      });
    }

    it('has no other role, no managed policy on a function role, and only Lambda may assume them', () => {
      const roles = resourcesOfType(prod.template, 'AWS::IAM::Role').filter(([id]) => id !== 'HostRole');
      expect(roles.map(([id]) => id).sort()).toEqual(
        Object.values(FUNCTIONS)
          .map((f) => f.role)
          .sort(),
      );
      for (const [, role] of roles) {
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
        expect(role.Properties.PermissionsBoundary).toBeUndefined();
        expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
          { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ]);
      }
    });

    it('allows `*` resources only for Describe actions, which take nothing narrower', () => {
      for (const [id, role] of resourcesOfType(prod.template, 'AWS::IAM::Role')) {
        if (id === 'HostRole') continue; // no inline policy: HostPolicy only
        for (const statement of role.Properties.Policies[0].PolicyDocument.Statement) {
          if (statement.Effect === 'Allow' && statement.Resource === '*') {
            for (const action of asList<string>(statement.Action)) expect(action).toMatch(/^ec2:Describe/);
          }
        }
      }
    });

    it('never lets the reconcile, lease or instanceState functions write the network config', () => {
      for (const fn of ['lease', 'instanceState', 'reconcile'] as const) {
        const statements = roleStatements(prod.template, FUNCTIONS[fn].role);
        const writes = statements.filter(
          (s: Json) => s.Effect === 'Allow' && asList<string>(s.Action).some((a) => a === 'dynamodb:PutItem'),
        );
        for (const s of writes) {
          expect(s.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']).not.toContain('CONFIG');
        }
        expect(statements).toContainEqual(
          expect.objectContaining({ Sid: 'ConfigNeverWritten', Effect: 'Deny' }),
        );
      }
    });
  });

  describe("callers' policies", () => {
    const executeApi = (route: string) =>
      sub(`arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${HttpApi}/*/${route}`);

    it('lets hosts call the two host paths (any method: a wrong one is answered 405), with credentials EC2 issued to an instance in the VPC', () => {
      expect(prod.template.Resources.HostPolicy.Properties.PolicyDocument.Statement).toEqual([
        {
          Sid: 'HostRoutes',
          Effect: 'Allow',
          Action: 'execute-api:Invoke',
          Resource: [executeApi('*/v1/config'), executeApi('*/v1/lease')],
          Condition: { StringEquals: { 'aws:EC2InstanceSourceVPC': { Ref: 'VpcId' } } },
        },
      ]);
    });

    it('creates the host role, assumable by EC2 only, with the host policy and an instance profile', () => {
      const role = prod.template.Resources.HostRole.Properties;
      expect(role.RoleName).toBe('vpc-lease-prod-us-east-1-host');
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      expect(role.ManagedPolicyArns).toEqual([{ Ref: 'HostPolicy' }]);
      expect(role.Policies).toBeUndefined();
      expect(prod.template.Resources.HostInstanceProfile.Properties.Roles).toEqual([{ Ref: 'HostRole' }]);
    });

    it('lets operators call the admin routes and nothing else', () => {
      expect(prod.template.Resources.OperatorPolicy.Properties.PolicyDocument.Statement).toEqual([
        {
          Sid: 'AdminRoutes',
          Effect: 'Allow',
          Action: 'execute-api:Invoke',
          Resource: [executeApi('*/v1/admin/*')],
        },
      ]);
    });
  });

  describe('EC2 events and failures', () => {
    const rules = (template: Json) =>
      resourcesOfType(template, 'AWS::Events::Rule').map(([, r]) => r.Properties);

    it('sends EC2 instance state changes to instanceState, with bounded retries and a dead-letter queue', () => {
      const rule = rules(prod.template).find((r) => r.Name === 'vpc-lease-prod-instance-state');
      expect(rule.EventPattern).toEqual({
        source: ['aws.ec2'],
        'detail-type': ['EC2 Instance State-change Notification'],
        detail: { state: ['running', 'stopped', 'shutting-down', 'terminated'] },
      });
      expect(rule.Targets).toHaveLength(1);
      expect(rule.Targets[0]).toMatchObject({
        Arn: { 'Fn::GetAtt': ['InstanceStateLambdaFunction', 'Arn'] },
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 24 },
        DeadLetterConfig: { Arn: queueArn },
      });
    });

    it('runs the reconcile every five minutes, its failures in the same dead-letter queue', () => {
      const rule = rules(prod.template).find((r) => r.Name === 'vpc-lease-prod-reconcile');
      expect(rule.ScheduleExpression).toBe('rate(5 minutes)');
      expect(rule.Targets[0]).toMatchObject({
        Arn: { 'Fn::GetAtt': ['ReconcileLambdaFunction', 'Arn'] },
        RetryPolicy: { MaximumEventAgeInSeconds: 300, MaximumRetryAttempts: 2 },
        DeadLetterConfig: { Arn: queueArn },
      });
    });

    it('sends invocations that failed after Lambda retries to the queue (async on-failure destination)', () => {
      const configs = Object.fromEntries(
        resourcesOfType(prod.template, 'AWS::Lambda::EventInvokeConfig').map(([, c]) => [
          c.Properties.FunctionName.Ref,
          c.Properties,
        ]),
      );
      expect(configs.InstanceStateLambdaFunction).toMatchObject({
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 3600,
        DestinationConfig: { OnFailure: { Destination: queueArn } },
      });
      expect(configs.ReconcileLambdaFunction).toMatchObject({
        MaximumRetryAttempts: 0,
        DestinationConfig: { OnFailure: { Destination: queueArn } },
      });
    });

    it('keeps failed events 14 days, encrypted, writable by the two rules only, over TLS only', () => {
      const queue = prod.template.Resources.FailedEventsQueue.Properties;
      expect(queue).toMatchObject({ MessageRetentionPeriod: 1_209_600, SqsManagedSseEnabled: true });
      const [allow, deny] =
        prod.template.Resources.FailedEventsQueuePolicy.Properties.PolicyDocument.Statement;
      expect(allow).toMatchObject({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: {
          ArnEquals: {
            'aws:SourceArn': [
              sub(
                'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/vpc-lease-prod-instance-state',
              ),
              sub(
                'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/vpc-lease-prod-reconcile',
              ),
            ],
          },
        },
      });
      expect(deny).toMatchObject({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    });
  });

  describe('alarms', () => {
    it('alarms when any route table reaches 80 % of its RouteLimit (Powertools EMF metric)', () => {
      const alarm = prod.template.Resources.RouteTableUtilisationAlarm.Properties;
      expect(alarm).toMatchObject({
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 80,
        TreatMissingData: 'notBreaching',
        Metrics: [
          {
            Id: 'utilisation',
            Expression: 'SELECT MAX(RouteTableUtilisation) FROM VpcLease',
            ReturnData: true,
          },
        ],
      });
    });

    it('alarms on the first message in the dead-letter queue', () => {
      const alarm = prod.template.Resources.FailedEventsAlarm.Properties;
      expect(alarm).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['FailedEventsQueue', 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
      });
    });

    it('takes thresholds and the on-call topic from the stage parameters', () => {
      const utilisation = scoped.template.Resources.RouteTableUtilisationAlarm.Properties;
      expect(Number(utilisation.Threshold)).toBe(75); // a --param arrives as a string; CloudFormation accepts both
      expect(utilisation.AlarmActions).toEqual({
        'Fn::If': ['HasAlarmTopic', [ALARM_TOPIC], { Ref: 'AWS::NoValue' }],
      });
      expect(scoped.template.Conditions.HasAlarmTopic).toEqual({
        'Fn::Not': [{ 'Fn::Equals': [ALARM_TOPIC, ''] }],
      });
      expect(prod.template.Conditions.HasAlarmTopic).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    });
  });

  describe('data safety', () => {
    it('keeps the lease table through deletes and replacements, with PITR, deletion protection, TTL and SSE', () => {
      const table = prod.template.Resources.LeaseTable;
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
      expect(table.Properties).toMatchObject({
        TableName: 'vpc-lease-prod',
        BillingMode: 'PAY_PER_REQUEST',
        DeletionProtectionEnabled: true,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
        SSESpecification: { SSEEnabled: true },
      });
    });

    it('has the key schema the adapters create in moto', () => {
      const schema = tableDefinition('vpc-lease-prod');
      const table = prod.template.Resources.LeaseTable.Properties;
      expect(table.KeySchema).toEqual(schema.KeySchema);
      expect(table.AttributeDefinitions).toEqual(schema.AttributeDefinitions);
      expect(table.GlobalSecondaryIndexes).toBeUndefined();
    });
  });

  describe('parameters and outputs', () => {
    it('takes the VPC as a typed stack parameter, defaulting to --param vpcId', () => {
      expect(prod.template.Parameters.VpcId).toMatchObject({ Type: 'AWS::EC2::VPC::Id', Default: '' });
      expect(scoped.template.Parameters.VpcId.Default).toBe('vpc-0123456789abcdef0');
    });

    it('outputs the API URL, the two callers policies and the table name', () => {
      const outputs = prod.template.Outputs;
      expect(outputs.HttpApiUrl.Value['Fn::Join'][1]).toContainEqual({ Ref: 'HttpApi' });
      expect(outputs.HostPolicyArn.Value).toEqual({ Ref: 'HostPolicy' });
      expect(outputs.OperatorPolicyArn.Value).toEqual({ Ref: 'OperatorPolicy' });
      expect(outputs.LeaseTableName.Value).toEqual({ Ref: 'LeaseTable' });
      expect(outputs.FailedEventsQueueUrl.Value).toEqual({ Ref: 'FailedEventsQueue' });
      expect(outputs.HostRoleName.Value).toEqual({ Ref: 'HostRole' });
      expect(outputs.HostInstanceProfileArn.Value).toEqual({ 'Fn::GetAtt': ['HostInstanceProfile', 'Arn'] });
      expect(outputs.HostInstanceProfileName.Value).toEqual({ Ref: 'HostInstanceProfile' });
    });

    it('takes further host roles from the hostRoleNames parameter (names only, no paths)', () => {
      expect(prod.template.Parameters.HostRoleNames).toMatchObject({ Type: 'String', Default: '' });
      expect(scoped.template.Parameters.HostRoleNames.Default).toBe('legacy-nodes,ci-nodes');
      const pattern = new RegExp(prod.template.Parameters.HostRoleNames.AllowedPattern);
      expect(pattern.test('legacy-nodes,ci-nodes')).toBe(true);
      expect(pattern.test('team/legacy-nodes')).toBe(false);
    });

    it('refuses route table ids that are not route table ids, naming the parameter', () => {
      expect(invalidRouteTables).toBeInstanceOf(Error);
      expect(invalidRouteTables?.message).toContain('routeTableIds');
      expect(invalidRouteTables?.message).toContain('not-a-table');
    });
  });
  describe('dashboard', () => {
    /** One metric a widget shows: a plain metric, or a SEARCH (dimension names + filters). */
    interface ShownMetric {
      widget: string;
      namespace: string;
      name: string;
      /** dimension name -> value; a SEARCH's schema dimensions without a filter map to '*' */
      dimensions: Record<string, string>;
      stat: string;
    }

    /** The dashboard body with every `${X}` of its Fn::Sub replaced by `<X>`, and the X found. */
    const dashboardOf = (template: Json) => {
      const text: string = template.Resources.Dashboard.Properties.DashboardBody['Fn::Sub'];
      const references = new Set<string>();
      const body = JSON.parse(
        text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          references.add(name);
          return `<${name}>`;
        }),
      );
      return { body, references };
    };

    const shownMetrics = (body: Json): ShownMetric[] =>
      (body.widgets as Json[]).flatMap((widget) =>
        (widget.properties.metrics as Json[]).map((entry): ShownMetric => {
          const title = widget.properties.title as string;
          if (entry.length === 1 && entry[0].expression) {
            const search = /^SEARCH\('\{([^}]+)\} (.+)', '(\w+)', \d+\)$/.exec(entry[0].expression);
            if (!search) throw new Error(`${title}: not a SEARCH expression: ${entry[0].expression}`);
            const [namespace, ...schema] = search[1]!.split(',');
            const filters = Object.fromEntries(
              [...search[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
            );
            const { MetricName, ...dimensionFilters } = filters;
            const dimensions = Object.fromEntries(schema.map((d) => [d, dimensionFilters[d] ?? '*']));
            expect(
              Object.keys(dimensionFilters).every((d) => schema.includes(d)),
              title,
            ).toBe(true);
            return { widget: title, namespace: namespace!, name: MetricName!, dimensions, stat: search[3]! };
          }
          const options = typeof entry.at(-1) === 'object' ? entry.at(-1) : {};
          const [namespace, name, ...pairs] = typeof entry.at(-1) === 'object' ? entry.slice(0, -1) : entry;
          const dimensions: Record<string, string> = {};
          for (let i = 0; i < pairs.length; i += 2) dimensions[pairs[i]] = pairs[i + 1];
          return { widget: title, namespace, name, dimensions, stat: options.stat ?? widget.properties.stat };
        }),
      );

    const functionEnvironment = (template: Json) =>
      template.Resources[FUNCTIONS.lease.logicalId].Properties.Environment.Variables;

    it('shows only metrics the functions publish, under their namespace, service and dimensions', () => {
      const { body } = dashboardOf(prod.template);
      const env = functionEnvironment(prod.template);
      const ours = shownMetrics(body).filter((m) => m.namespace === env.POWERTOOLS_METRICS_NAMESPACE);
      // the dimensions each metric is published with (functions/lease.ts, functions/reconcile.ts)
      const publishedDimensions: Record<string, string[]> = {
        [METRIC_NAMES.leasesRefused]: [METRIC_DIMENSIONS.service, METRIC_DIMENSIONS.errorCode],
        [METRIC_NAMES.routeTableUtilisation]: [METRIC_DIMENSIONS.service, METRIC_DIMENSIONS.routeTableId],
      };
      expect(ours.length).toBeGreaterThan(0);
      for (const metric of ours) {
        expect(Object.values(METRIC_NAMES), metric.widget).toContain(metric.name);
        expect(Object.keys(metric.dimensions).sort(), `${metric.widget}: ${metric.name}`).toEqual(
          (publishedDimensions[metric.name] ?? [METRIC_DIMENSIONS.service]).slice().sort(),
        );
        expect([env.POWERTOOLS_SERVICE_NAME, '*']).toContain(metric.dimensions[METRIC_DIMENSIONS.service]);
      }
      // nothing under another name that could be meant as ours
      const others = shownMetrics(body).filter((m) => m.namespace !== env.POWERTOOLS_METRICS_NAMESPACE);
      for (const metric of others) expect(metric.namespace, metric.widget).toMatch(/^AWS\//);
    });

    it('shows route-table utilisation per table, leases granted, refused by code and answered 429, and reconcile changes', () => {
      const shown = shownMetrics(dashboardOf(prod.template).body);
      const find = (name: string, dimensions: Record<string, string>) =>
        shown.filter(
          (m) => m.name === name && expect.objectContaining(dimensions).asymmetricMatch(m.dimensions),
        );
      expect(
        find(METRIC_NAMES.routeTableUtilisation, { [METRIC_DIMENSIONS.routeTableId]: '*' }),
      ).toHaveLength(1);
      expect(find(METRIC_NAMES.leasesGranted, {})).toHaveLength(1);
      expect(find(METRIC_NAMES.leasesRefused, { [METRIC_DIMENSIONS.errorCode]: '*' })).toHaveLength(1);
      // the code the lease function gives a 429 (DESIGN's TooManyRequests)
      expect(
        find(METRIC_NAMES.leasesRefused, { [METRIC_DIMENSIONS.errorCode]: 'TooManyRequests' }),
      ).toHaveLength(1);
      expect(find(METRIC_NAMES.reconcileChanges, {})).toHaveLength(1);
    });

    it('shows API 4xx and 5xx per route of this API (detailed route metrics on), and the dead-letter queue', () => {
      const shown = shownMetrics(dashboardOf(prod.template).body);
      for (const status of ['4xx', '5xx']) {
        expect(shown).toContainEqual(
          expect.objectContaining({
            namespace: 'AWS/ApiGateway',
            name: status,
            dimensions: { ApiId: '<HttpApi>', Route: '*', Stage: '*' },
            stat: 'Sum',
          }),
        );
      }
      expect(
        prod.template.Resources.HttpApiStage.Properties.DefaultRouteSettings.DetailedMetricsEnabled,
      ).toBe(true);
      expect(shown).toContainEqual(
        expect.objectContaining({
          namespace: 'AWS/SQS',
          name: 'ApproximateNumberOfMessagesVisible',
          dimensions: { QueueName: '<FailedEventsQueue.QueueName>' },
        }),
      );
    });

    it('shows errors, throttles and duration of each of the four functions', () => {
      const shown = shownMetrics(dashboardOf(prod.template).body).filter((m) => m.namespace === 'AWS/Lambda');
      const expected = ['Errors', 'Throttles', 'Duration'].flatMap((name) =>
        Object.values(FUNCTIONS).map((fn) => ({ name, dimensions: { FunctionName: `<${fn.logicalId}>` } })),
      );
      expect(shown.map(({ name, dimensions }) => ({ name, dimensions }))).toEqual(expected);
    });

    it('refers only to resources of the stack, marks the utilisation alarm threshold, and outputs its URL', () => {
      const { body, references } = dashboardOf(scoped.template);
      for (const reference of references) {
        const resource = reference.split('.')[0]!;
        expect(reference.startsWith('AWS::') || resource in scoped.template.Resources, reference).toBe(true);
      }
      const utilisation = (body.widgets as Json[]).find((w) =>
        JSON.stringify(w.properties.metrics).includes(METRIC_NAMES.routeTableUtilisation),
      );
      expect(utilisation.properties.annotations.horizontal).toEqual([{ label: 'alarm', value: 75 }]);
      expect(prod.template.Resources.Dashboard.Properties.DashboardName).toBe('vpc-lease-prod');
      expect(prod.template.Outputs.DashboardUrl.Value).toEqual({
        'Fn::Sub':
          'https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards/dashboard/${Dashboard}',
      });
    });
  });
});

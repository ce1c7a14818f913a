/**
 * The admin CLI, driven through its real entry point (`main`) against an in-process
 * HTTP server that speaks the admin contract of DESIGN.md with canned data.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../admin/cli.js';
import { formatLease } from '../../admin/format.js';
import { CidrError, formatCidr, parseSubnetKey } from '../../shared/cidr.js';
import {
  ConflictError,
  ForbiddenError,
  RouteLimitExceededError,
  ThrottledError,
  type VpcLeaseError,
} from '../../shared/errors.js';
import {
  ADMIN_PATHS,
  type ErrorJson,
  type LeaseJson,
  LOCAL_OPERATOR_ARN,
  OFFLINE_AUTHORIZER_HEADER,
  type ReconcileReportJson,
  type RouteUsageJson,
} from '../../shared/http/contract.js';
import { type FlannelNetworkConfig, parseNetworkConfig, toFlannelJson } from '../../shared/network-config.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const HOUR = 3_600_000;

// ---------------------------------------------------------------------------------------
// A fake admin API: the routes, status codes and bodies of DESIGN.md, canned data behind.
// ---------------------------------------------------------------------------------------

interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

interface CannedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const lease = (third: number, instance: string, expiresInMs: number): LeaseJson => ({
  subnet: `10.244.${third}.0/24`,
  network: '10.244.0.0/16',
  instanceId: instance,
  privateIp: `10.0.1.${third + 10}`,
  networkInterfaceId: `eni-0${instance.slice(3)}`,
  expiresAt: new Date(NOW + expiresInMs).toISOString(),
  routes: [{ routeTableId: 'rtb-0123456789abcdef0', destination: `10.244.${third}.0/24`, state: 'active' }],
});

const cannedLeases = (): LeaseJson[] => [
  lease(2, 'i-0aaaaaaaaaaaaaaa1', 24 * HOUR - 30_000),
  lease(3, 'i-0aaaaaaaaaaaaaaa2', 20 * HOUR),
  lease(7, 'i-0aaaaaaaaaaaaaaa3', 24 * HOUR - 30_000),
  lease(9, 'i-0aaaaaaaaaaaaaaa4', 2 * HOUR),
  lease(12, 'i-0aaaaaaaaaaaaaaa5', -5 * 60_000 - 10_000),
];

const ROUTE_USAGE: RouteUsageJson = {
  tables: [
    {
      routeTableId: 'rtb-0123456789abcdef0',
      limit: 50,
      used: 41,
      owned: 39,
      foreign: 2,
      blackholes: 0,
      free: 9,
    },
    {
      routeTableId: 'rtb-0fedcba987654321f',
      limit: 50,
      used: 6,
      owned: 5,
      foreign: 1,
      blackholes: 1,
      free: 44,
    },
  ],
};

const RECONCILE_REPORT: ReconcileReportJson = {
  startedAt: '2025-06-01T12:00:00.000Z',
  changes: [
    {
      action: 'route-deleted',
      routeTableId: 'rtb-0123456789abcdef0',
      subnet: '10.244.40.0/24',
      instanceId: 'i-0dead',
      reason: 'instance terminated',
    },
  ],
  errors: [],
};

const PUBLISHED_CONFIG: FlannelNetworkConfig = toFlannelJson(
  parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 50 } }),
);

const PAGE_SIZE = 2;

class FakeAdminApi {
  readonly requests: RecordedRequest[] = [];
  leases = cannedLeases();
  config: FlannelNetworkConfig = PUBLISHED_CONFIG;
  /** answers the next request with this instead of the contract's normal answer */
  nextAnswer: CannedAnswer | undefined;
  private server: Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://127.0.0.1');
        const recorded: RecordedRequest = {
          method: request.method ?? '',
          path: url.pathname,
          query: url.searchParams,
          headers: request.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.requests.push(recorded);
        const answer = this.nextAnswer ?? this.answer(recorded);
        this.nextAnswer = undefined;
        response.writeHead(answer.status, {
          ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...answer.headers,
        });
        response.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.server?.close((e) => (e ? reject(e) : resolve())));
  }

  private answer(request: RecordedRequest): CannedAnswer {
    // IAM auth in AWS, the authorizer override header locally: no identity, no service.
    if (!request.headers[OFFLINE_AUTHORIZER_HEADER] && !request.headers.authorization) {
      return { status: 403, body: { message: 'Forbidden' } };
    }
    const { method, path } = request;
    if (path === ADMIN_PATHS.leases && method === 'GET')
      return this.listLeases(request.query.get('nextToken'));
    if (path.startsWith(`${ADMIN_PATHS.leases}/`)) {
      const key = path.slice(ADMIN_PATHS.leases.length + 1);
      if (method === 'GET') return this.findLease(key, (found) => ({ status: 200, body: found }));
      if (method === 'DELETE') {
        return this.findLease(key, (found) => {
          this.leases = this.leases.filter((l) => l !== found);
          return { status: 204 };
        });
      }
    }
    if (path === ADMIN_PATHS.routes && method === 'GET') return { status: 200, body: ROUTE_USAGE };
    if (path === ADMIN_PATHS.config && method === 'GET') return { status: 200, body: this.config };
    if (path === ADMIN_PATHS.config && method === 'PUT') return this.publishConfig(request.body);
    if (path === ADMIN_PATHS.reconcile && method === 'POST') return { status: 200, body: RECONCILE_REPORT };
    return { status: 404, body: { message: 'Not Found' } }; // API Gateway's answer for an unknown route
  }

  private listLeases(nextToken: string | null): CannedAnswer {
    const offset = nextToken === null ? 0 : Number(Buffer.from(nextToken, 'base64url').toString());
    if (!Number.isInteger(offset))
      return failure(new ValidationErrorLike('nextToken is not a token we issued.'));
    const end = offset + PAGE_SIZE;
    return {
      status: 200,
      body: {
        leases: this.leases.slice(offset, end),
        ...(end < this.leases.length ? { nextToken: Buffer.from(String(end)).toString('base64url') } : {}),
      },
    };
  }

  private findLease(key: string, onFound: (lease: LeaseJson) => CannedAnswer): CannedAnswer {
    let subnet: string;
    try {
      subnet = formatCidr(parseSubnetKey(key));
    } catch (error) {
      if (error instanceof CidrError) return failure(new ValidationErrorLike(error.message));
      throw error;
    }
    const found = this.leases.find((l) => l.subnet === subnet);
    return found
      ? onFound(found)
      : { status: 404, body: { error: { code: 'NotFound', message: `No lease holds ${subnet}.` } } };
  }

  private publishConfig(text: string): CannedAnswer {
    try {
      this.config = toFlannelJson(parseNetworkConfig(JSON.parse(text)));
      return { status: 200, body: this.config };
    } catch (error) {
      return failure(error as VpcLeaseError);
    }
  }
}

/** ValidationError with the shape of shared/errors.ts, for messages the fake makes up itself. */
class ValidationErrorLike extends Error {
  readonly code = 'ValidationError';
  readonly status = 400;
}

/** The body and status the real error middleware gives a domain error. */
function failure(
  error: Pick<VpcLeaseError, 'code' | 'status' | 'message'> & { details?: unknown },
): CannedAnswer {
  const body: ErrorJson = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details as Record<string, unknown> } : {}),
    },
  };
  return { status: error.status, body };
}

// ---------------------------------------------------------------------------------------
// Running the CLI in-process
// ---------------------------------------------------------------------------------------

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

let api: FakeAdminApi;

beforeEach(async () => {
  api = new FakeAdminApi();
  await api.start();
});

afterEach(async () => {
  await api.close();
});

async function vpcLease(
  argv: string[],
  options: { env?: Record<string, string>; stdin?: string; credentials?: boolean } = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    // the local stack's port, as `npm start` would export it; never the developer's real environment
    env: { VPCLEASE_API_PORT: String(api.port), ...options.env },
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    now: () => NOW,
    ...(options.credentials
      ? { credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example' }) }
      : {}),
  });
  return { code, stdout, stderr };
}

const local = (...argv: string[]) => vpcLease(['--local', ...argv]);

const operatorIdentity = (request: RecordedRequest | undefined): unknown =>
  JSON.parse(String(request?.headers[OFFLINE_AUTHORIZER_HEADER]));

// ---------------------------------------------------------------------------------------

describe('vpc-lease leases', () => {
  it('follows nextToken through every page and prints one table of all leases', async () => {
    const run = await local('leases');

    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(api.requests.map((r) => `${r.method} ${r.path}?${r.query}`)).toEqual([
      'GET /v1/admin/leases?',
      `GET /v1/admin/leases?nextToken=${Buffer.from('2').toString('base64url')}`,
      `GET /v1/admin/leases?nextToken=${Buffer.from('4').toString('base64url')}`,
    ]);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^SUBNET\s+INSTANCE\s+PRIVATE IP\s+INTERFACE\s+EXPIRES\s+ROUTES$/);
    expect(lines[1]).toMatch(
      /^10\.244\.2\.0\/24\s+i-0aaaaaaaaaaaaaaa1\s+10\.0\.1\.12\s+\S+\s+in 23h 59m\s+rtb-0123456789abcdef0 active$/,
    );
    expect(lines[5]).toMatch(/^10\.244\.12\.0\/24 .* expired 5m ago /);
    expect(run.stdout).toMatch(/\n5 leases\n$/);
  });

  it('sends the local operator identity in the authorizer override header with --local', async () => {
    await local('leases');

    expect(api.requests).toHaveLength(3);
    for (const request of api.requests) {
      expect(operatorIdentity(request)).toEqual({ iam: { userArn: LOCAL_OPERATOR_ARN } });
      expect(request.headers.authorization).toBeUndefined();
    }
    expect(LOCAL_OPERATOR_ARN).toBe(
      'arn:aws:sts::000000000000:assumed-role/vpc-lease-operator/local-operator',
    );
  });

  it('prints {"leases": [...]} with every page merged in --json mode', async () => {
    const run = await local('leases', '--json');

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ leases: cannedLeases() });
    expect(run.stdout).toBe(`${JSON.stringify({ leases: cannedLeases() }, null, 2)}\n`);
  });

  it('stops paging once --limit leases are in hand and says more exist', async () => {
    const run = await local('leases', '--limit', '3');

    expect(run.code).toBe(0);
    expect(api.requests).toHaveLength(2);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('10.244.'))).toHaveLength(3);
    expect(run.stdout).toMatch(/\n3 leases shown; more exist \(raise --limit\)\n$/);
  });

  it('refuses a --limit that is not a positive number, before any request', async () => {
    const run = await local('leases', '--limit', '0');

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toContain('--limit must be a positive whole number');
    expect(api.requests).toHaveLength(0);
  });
});

describe('vpc-lease lease <subnet>', () => {
  it.each(['10.244.7.0/24', '10.244.7.0-24'])(
    'asks for the flannel key of %s and prints the lease',
    async (arg) => {
      const run = await local('lease', arg);

      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        'GET /v1/admin/leases/10.244.7.0-24',
      ]);
      expect(run.stdout).toBe(formatLease(cannedLeases()[2]!, NOW));
      expect(run.stdout).toContain('expires            in 23h 59m (2025-06-02T11:59:30.000Z)');
    },
  );

  it('prints exactly the API JSON with --json', async () => {
    const run = await local('--json', 'lease', '10.244.7.0/24');

    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${JSON.stringify(cannedLeases()[2], null, 2)}\n`);
  });

  it.each([
    ['10.244.7.1/24', 'did you mean 10.244.7.0/24?'],
    ['10.244.7.0', 'has no prefix length'],
    ['10.244.7.0-33', 'invalid prefix length'],
    ['banana/24', 'is not an IPv4 address'],
  ])('rejects the subnet %s locally, before any request', async (arg, reason) => {
    const run = await local('lease', arg);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toContain(`error: Invalid subnet: `);
    expect(run.stderr).toContain(reason);
    expect(api.requests).toHaveLength(0);
  });

  it('exits 3 with the server code and message when no lease holds the subnet', async () => {
    const run = await local('lease', '10.244.99.0/24');

    expect(run).toEqual({
      code: 3,
      stdout: '',
      stderr:
        'error: NotFound: No lease holds 10.244.99.0/24.\n' +
        'Run "vpc-lease --local leases" to see which subnets are leased.\n',
    });
  });
});

describe('vpc-lease revoke <subnet>', () => {
  it('sends DELETE for the flannel key and confirms', async () => {
    const run = await local('revoke', '10.244.7.0/24');

    expect(run).toEqual({
      code: 0,
      stdout: 'Revoked 10.244.7.0/24: routes removed, lease deleted.\n',
      stderr: '',
    });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'DELETE /v1/admin/leases/10.244.7.0-24',
    ]);
    expect(operatorIdentity(api.requests[0])).toEqual({ iam: { userArn: LOCAL_OPERATOR_ARN } });
    expect(api.leases.map((l) => l.subnet)).not.toContain('10.244.7.0/24');
  });

  it('prints nothing in --json mode when the API answers 204 without a body', async () => {
    const run = await local('revoke', '10.244.7.0-24', '--json');

    expect(run).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('exits 3 when the lease is already gone', async () => {
    await local('revoke', '10.244.7.0/24');
    const again = await local('revoke', '10.244.7.0/24');

    expect(again.code).toBe(3);
    expect(again.stderr).toBe(
      'error: NotFound: No lease holds 10.244.7.0/24.\n' +
        'Run "vpc-lease --local leases" to see which subnets are leased.\n',
    );
  });
});

describe('vpc-lease routes', () => {
  it('prints per-table usage with a WARNING at 80 % or more', async () => {
    const run = await local('routes');

    expect(run.code).toBe(0);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/admin/routes']);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('ROUTE TABLE            USED/LIMIT  USE  OWNED  FOREIGN  BLACKHOLES  FREE');
    expect(lines[1]).toBe(
      'rtb-0123456789abcdef0       41/50  82%     39        2           0     9  WARNING',
    );
    expect(lines[2]).toBe('rtb-0fedcba987654321f        6/50  12%      5        1           1    44');
    expect(run.stdout).toContain('WARNING: rtb-0123456789abcdef0 is at 80 % or more');
  });

  it('prints exactly the API JSON with --json', async () => {
    const run = await local('routes', '--json');

    expect(run.stdout).toBe(`${JSON.stringify(ROUTE_USAGE, null, 2)}\n`);
  });
});

describe('vpc-lease config', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpc-lease-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('config get prints the published config as JSON, the input form of config set', async () => {
    const run = await local('config', 'get');

    expect(run.code).toBe(0);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/admin/config']);
    expect(run.stdout).toBe(`${JSON.stringify(PUBLISHED_CONFIG, null, 2)}\n`);
  });

  it('config set <file> PUTs the file as written and prints the config as published', async () => {
    const file = join(dir, 'network.json');
    const written = { Network: '10.250.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 100 } };
    await writeFile(file, JSON.stringify(written));

    const run = await local('config', 'set', file);

    expect(run.code).toBe(0);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['PUT /v1/admin/config']);
    expect(JSON.parse(api.requests[0]!.body)).toEqual(written);
    expect(api.requests[0]!.headers['content-type']).toBe('application/json');
    expect(operatorIdentity(api.requests[0])).toEqual({ iam: { userArn: LOCAL_OPERATOR_ARN } });
    expect(run.stdout).toMatch(/^Published the network config\.\n\{\n/);
    expect(JSON.parse(run.stdout.slice(run.stdout.indexOf('{')))).toMatchObject({
      Network: '10.250.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.250.1.0',
      SubnetMax: '10.250.255.0',
    });
  });

  it('config set - reads the config from stdin', async () => {
    const written = { Network: '10.251.0.0/16', Backend: { Type: 'aws-vpc' } };

    const run = await vpcLease(['--local', 'config', 'set', '-', '--json'], {
      stdin: JSON.stringify(written),
    });

    expect(run.code).toBe(0);
    expect(JSON.parse(api.requests[0]!.body)).toEqual(written);
    expect(JSON.parse(run.stdout)).toEqual(api.config);
  });

  it('exits 1 with the server message when the API refuses the config (400)', async () => {
    const run = await vpcLease(['--local', 'config', 'set', '-'], {
      stdin: JSON.stringify({ Network: '10.244.0.0/33', Backend: { Type: 'aws-vpc' } }),
    });

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: ValidationError: Network: .*invalid prefix length/);
    expect(api.config).toEqual(PUBLISHED_CONFIG);
  });

  it('exits 4 when the change would strand live leases (409 Conflict)', async () => {
    api.nextAnswer = failure(
      new ConflictError(
        'SubnetLen 26 would strand 2 live leases: 10.244.2.0/24 (i-0aaa1), 10.244.3.0/24 (i-0aaa2).',
      ),
    );

    const run = await vpcLease(['--local', 'config', 'set', '-'], {
      stdin: '{"Network": "10.244.0.0/16", "SubnetLen": 26, "Backend": {"Type": "aws-vpc"}}',
    });

    expect(run.code).toBe(4);
    expect(run.stderr).toBe(
      'error: Conflict: SubnetLen 26 would strand 2 live leases: 10.244.2.0/24 (i-0aaa1), 10.244.3.0/24 (i-0aaa2).\n',
    );
  });

  it('refuses a missing file or one that is not JSON before any request (exit 2)', async () => {
    const missing = await local('config', 'set', join(dir, 'nope.json'));
    const notJson = join(dir, 'network.yaml');
    await writeFile(notJson, 'Network: 10.244.0.0/16\n');
    const invalid = await local('config', 'set', notJson);
    const empty = await vpcLease(['--local', 'config', 'set', '-'], { stdin: '' });

    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('Cannot read');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('network.yaml is not valid JSON');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('stdin is empty');
    expect(api.requests).toHaveLength(0);
  });
});

describe('vpc-lease reconcile', () => {
  it('POSTs to the reconcile route and prints what changed', async () => {
    const run = await local('reconcile');

    expect(run.code).toBe(0);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/admin/reconcile']);
    expect(run.stdout).toBe(
      [
        'Reconcile started 2025-06-01T12:00:00.000Z: 1 change, 0 errors.',
        '',
        'ACTION         ROUTE TABLE            SUBNET          INSTANCE  REASON',
        'route-deleted  rtb-0123456789abcdef0  10.244.40.0/24  i-0dead   instance terminated',
        '',
      ].join('\n'),
    );
  });

  it('prints exactly the report JSON with --json', async () => {
    const run = await local('reconcile', '--json');

    expect(run.stdout).toBe(`${JSON.stringify(RECONCILE_REPORT, null, 2)}\n`);
  });
});

describe('exit codes scripts can rely on', () => {
  it.each<{ answer: string; reply: CannedAnswer; exit: number; stderr: string }>([
    {
      answer: '400 ValidationError',
      reply: failure(new ValidationErrorLike('nextToken is not a token we issued.')),
      exit: 1,
      stderr: 'error: ValidationError: nextToken is not a token we issued.\n',
    },
    {
      answer: '403 Forbidden from the function',
      reply: failure(new ForbiddenError('Admin routes need an operator identity.')),
      exit: 1,
      stderr: 'error: Forbidden: Admin routes need an operator identity.\n',
    },
    {
      answer: '403 from API Gateway itself',
      reply: { status: 403, body: { message: 'Forbidden' } },
      exit: 1,
      stderr: 'error: Http403: Forbidden\n',
    },
    {
      answer: '409 RouteLimitExceeded',
      reply: failure(
        new RouteLimitExceededError({ used: 50, limit: 50, routeTableId: 'rtb-0123456789abcdef0' }),
      ),
      exit: 4,
      stderr:
        'error: RouteLimitExceeded: Route table full in route table rtb-0123456789abcdef0: 50/50 routes in use.',
    },
    {
      answer: '503 Throttled with Retry-After',
      reply: { ...failure(new ThrottledError('EC2', 7)), headers: { 'retry-after': '7' } },
      exit: 5,
      stderr:
        "error: Throttled: EC2 is throttling this account's requests; nothing was lost. Retry after 7 s.\n",
    },
    {
      answer: '503 ServiceUnavailable, Retry-After',
      reply: {
        status: 503,
        body: { error: { code: 'ServiceUnavailable', message: 'EC2 is unavailable.' } },
        headers: { 'retry-after': '30' },
      },
      exit: 5,
      stderr: 'error: ServiceUnavailable: EC2 is unavailable. (retry after 30 s)\n',
    },
    {
      answer: '500 InternalError',
      reply: { status: 500, body: { error: { code: 'InternalError', message: 'Internal error.' } } },
      exit: 5,
      stderr: 'error: InternalError: Internal error.\n',
    },
    {
      answer: '503 from API Gateway itself (the function did not answer in time)',
      reply: { status: 503, body: { message: 'Service Unavailable' } },
      exit: 5,
      stderr:
        'error: Http503: Service Unavailable\n' +
        'This is temporary (the API, or AWS behind it, was unavailable or too slow): run the command again shortly.\n',
    },
    {
      answer: '503 ServiceUnavailable when the function ran out of time',
      reply: {
        status: 503,
        body: {
          error: {
            code: 'ServiceUnavailable',
            message:
              'AWS answered too slowly to finish this request in time; nothing was lost. Retry shortly.',
          },
        },
        headers: { 'retry-after': '5' },
      },
      exit: 5,
      stderr:
        'error: ServiceUnavailable: AWS answered too slowly to finish this request in time; nothing was lost. Retry shortly. (retry after 5 s)\n' +
        'This is temporary (the API, or AWS behind it, was unavailable or too slow): run the command again in 5 s.\n',
    },
    {
      answer: '429 from API Gateway',
      reply: { status: 429, body: { message: 'Too Many Requests' } },
      exit: 5,
      stderr: 'error: Http429: Too Many Requests\n',
    },
  ])(
    'answers $answer with exit $exit and the server code and message on stderr',
    async ({ reply, exit, stderr }) => {
      api.nextAnswer = reply;

      const run = await local('routes');

      expect(run.code).toBe(exit);
      expect(run.stdout).toBe('');
      expect(run.stderr.startsWith(stderr)).toBe(true);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    },
  );

  it('exits 5 when nothing listens at the API URL, and suggests starting the local stack', async () => {
    await api.close();
    const closedPort = api.port;
    api = new FakeAdminApi(); // afterEach closes this one, which never started
    await api.start();

    const run = await vpcLease(['--local', 'routes'], { env: { VPCLEASE_API_PORT: String(closedPort) } });

    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(
      /^error: Unreachable: Request to http:\/\/127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/,
    );
    expect(run.stderr).toContain('npm start');
  });

  it.each([
    [[], 'No command given.'],
    [['frobnicate'], 'Unknown command "frobnicate".'],
    [['config'], '"config" needs a subcommand: get or set.'],
    [['config', 'delete'], 'Unknown command "config delete"'],
    [['lease'], '"lease" needs <subnet>.'],
    [['routes', 'extra'], 'Unexpected argument "extra" for "routes".'],
    [['routes', '--limit', '3'], '--limit is not a flag of "routes".'],
    [['leases', '--bogus'], "Unknown option '--bogus'"],
  ])('exits 2 for the usage error in %j, before any request', async (argv, message) => {
    const run = await local(...argv);

    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`error: ${message}`);
    expect(run.stderr).toContain('--help" for usage.');
    expect(api.requests).toHaveLength(0);
  });

  it('exits 2 without an API URL outside --local, naming the flag and the variable', async () => {
    const run = await vpcLease(['routes']);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--api-url');
    expect(run.stderr).toContain('VPCLEASE_API_URL');
  });

  it('exits 2 when --local would send its unsigned identity to a non-loopback URL', async () => {
    const run = await vpcLease([
      '--local',
      '--api-url',
      'https://abc123.execute-api.eu-west-1.amazonaws.com',
      'routes',
    ]);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('only allowed against a loopback API URL');
  });
});

describe('connecting without --local', () => {
  it('signs every request with SigV4 for execute-api in the given region', async () => {
    const run = await vpcLease(['--api-url', api.url, '--region', 'eu-west-1', 'routes'], {
      credentials: true,
    });

    expect(run.code).toBe(0);
    const [request] = api.requests;
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}$/,
    );
    expect(request?.headers[OFFLINE_AUTHORIZER_HEADER]).toBeUndefined();
  });

  it('takes the API URL from VPCLEASE_API_URL and the region from AWS_REGION', async () => {
    const run = await vpcLease(['routes'], {
      env: { VPCLEASE_API_URL: api.url, AWS_REGION: 'ap-southeast-2' },
      credentials: true,
    });

    expect(run.code).toBe(0);
    expect(api.requests[0]?.headers.authorization).toContain('/ap-southeast-2/execute-api/');
  });
});

describe('help', () => {
  it.each([
    [['--help'], 'Usage: vpc-lease <command> [flags]'],
    [['help'], 'Usage: vpc-lease <command> [flags]'],
    [['lease', '--help'], 'Usage: vpc-lease lease <subnet> [flags]'],
    [['help', 'revoke'], 'Usage: vpc-lease revoke <subnet> [flags]'],
    [['leases', '-h'], '--limit <n>'],
    [['config', '--help'], 'Usage: vpc-lease config <get|set> [flags]'],
    [['config', 'set', '--help'], 'Usage: vpc-lease config set <file|-> [flags]'],
  ])('%j prints help on stdout and exits 0 without a request', async (argv, expected) => {
    const run = await local(...argv);

    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(expected);
    expect(api.requests).toHaveLength(0);
  });

  it('documents every exit code in the help of the program and of each command', async () => {
    for (const argv of [['--help'], ['routes', '--help'], ['config', 'get', '--help']]) {
      const { stdout } = await local(...argv);
      for (const code of [
        '0  ok',
        '1  the API refused',
        '2  usage error',
        '3  not found',
        '4  conflict',
        '5  API or AWS unavailable',
      ]) {
        expect(stdout).toContain(code);
      }
    }
  });
});

describe('the vpc-lease bin entry', () => {
  it('runs from a fresh checkout with node alone and exits with the CLI exit code', async () => {
    const bin = fileURLToPath(new URL('../../admin/bin/vpc-lease.mjs', import.meta.url));
    const run = promisify(execFile);

    const help = await run(process.execPath, [bin, '--help']);
    const usage = await run(process.execPath, [bin, '--local', 'lease', 'not-a-subnet']).catch(
      (error: { code: number; stderr: string }) => error,
    );

    expect(help.stdout).toContain('Usage: vpc-lease <command> [flags]');
    for (const command of [
      'leases',
      'lease <subnet>',
      'revoke <subnet>',
      'routes',
      'config get',
      'config set <file|->',
      'reconcile',
    ]) {
      expect(help.stdout).toContain(`  ${command} `);
    }
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toMatch(/^error: Invalid subnet: /);
  });
});

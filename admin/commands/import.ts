/**
 * `import`: reads a live flannel registry from etcd (v3 API) and hands it to
 * POST /v1/admin/import, which adopts each host's lease in place. A dry run unless --apply.
 */
import { ADMIN_PATHS, type FlannelLeaseJson, type ImportReportJson } from '../../shared/http/contract.js';
import { EtcdClient } from '../etcd.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { formatImportReport, formatJson } from '../format.js';
import type { Command } from './command.js';

export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
/** TTL look-ups in flight at once (one per etcd lease). */
const PARALLEL_TTL_READS = 8;
/** The control plane grants leases and writes routes for the whole registry in one request. */
const IMPORT_TIMEOUT_MS = 60_000;

export interface FlannelRegistry {
  /** `<prefix>/config`, parsed; undefined when absent */
  config: unknown;
  leases: FlannelLeaseJson[];
}

export const importCommand: Command = {
  words: ['import'],
  args: [],
  options: {
    'etcd-endpoints': {
      type: 'string',
      valueName: 'url[,url...]',
      description: "flannel's etcd (v3 API), e.g. https://10.0.0.5:2379 (required)",
    },
    'etcd-prefix': {
      type: 'string',
      valueName: 'key',
      description: `the registry's prefix, as flanneld's --etcd-prefix (default ${DEFAULT_ETCD_PREFIX})`,
    },
    'etcd-cafile': {
      type: 'string',
      valueName: 'file',
      description: "PEM CA bundle to verify etcd's certificate",
    },
    'etcd-certfile': { type: 'string', valueName: 'file', description: 'PEM client certificate for etcd' },
    'etcd-keyfile': { type: 'string', valueName: 'file', description: 'PEM client key for etcd' },
    apply: {
      type: 'boolean',
      description: 'adopt the leases; without it, print the plan and change nothing',
    },
  },
  summary: 'adopt a live flannel registry from etcd, every host keeping its subnet',
  description: `Reads flannel's registry from etcd (<prefix>/config and every <prefix>/subnets/<key>,
with the time left on each key's etcd lease) and sends it to the control plane, which
plans, for each flannel lease, whether it becomes a vpc-lease lease on the same subnet:
  adopt      the PublicIP is the private IP of a running instance of the VPC; its route
             is kept when it already reaches the host, else re-pointed or created
  unchanged  the instance already holds this subnet (a previous import, or its agent)
  skip       no such instance, a stopped instance, outside Network, subnet or instance
             already leased otherwise, another key names the same host (the longest
             remaining etcd TTL is kept), no route capacity left, a foreign route on it
Without --apply nothing changes: the plan is printed as a table. With --apply the leases
are adopted; running it again changes nothing. When vpc-lease has no network config yet,
the registry's is published; otherwise the two must agree (exit 4 with the differences).
Exit 0 when every lease is adopted (or unchanged), 6 when some were (or would be) skipped,
5 when etcd cannot be reached. See docs/migration.md.
Example:
  vpc-lease import --etcd-endpoints https://10.0.0.5:2379 --etcd-cafile ca.pem \\
      --etcd-certfile client.pem --etcd-keyfile client-key.pem`,
  async run(context) {
    const { options } = context;
    const endpoints = parseEndpoints(options['etcd-endpoints']);
    const prefix = parsePrefix(options['etcd-prefix']);
    const pem = async (flag: string) => {
      const file = stringOption(options[flag]);
      return file === undefined ? undefined : context.readInput(file);
    };
    const tls = {
      ca: await pem('etcd-cafile'),
      cert: await pem('etcd-certfile'),
      key: await pem('etcd-keyfile'),
    };
    let etcd: EtcdClient;
    try {
      etcd = new EtcdClient(endpoints, { tls });
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
    const api = context.api(); // a missing API URL or region fails before etcd is read
    const registry = await readRegistry(etcd, prefix);
    const { body } = await api.request<ImportReportJson>('POST', ADMIN_PATHS.import, {
      body: { apply: options.apply === true, config: registry.config ?? null, leases: registry.leases },
      timeoutMs: IMPORT_TIMEOUT_MS,
    });
    context.out(context.json ? formatJson(body) : formatImportReport(body));
    return body.summary.skipped > 0 ? ExitCode.Skipped : ExitCode.Ok;
  },
};

/** The registry under `prefix`: its config and every subnet key, each with its etcd lease's TTL. */
export async function readRegistry(etcd: EtcdClient, prefix: string): Promise<FlannelRegistry> {
  const kvs = await etcd.listPrefix(`${prefix}/`);
  const configKey = `${prefix}/config`;
  const subnetsPrefix = `${prefix}/subnets/`;
  let config: unknown;
  const subnets = kvs.filter(
    (kv) => kv.key.startsWith(subnetsPrefix) && kv.key.length > subnetsPrefix.length,
  );
  const found = kvs.find((kv) => kv.key === configKey);
  if (found) {
    try {
      config = JSON.parse(found.value);
    } catch (error) {
      throw new Error(`etcd key ${configKey} is not JSON: ${(error as Error).message}`, { cause: error });
    }
  }
  if (!found && subnets.length === 0) {
    throw new UsageError(
      `etcd holds nothing under ${prefix}/ (no config, no subnets): check --etcd-prefix and --etcd-endpoints.`,
    );
  }

  const leaseIds = [...new Set(subnets.flatMap((kv) => (kv.lease ? [kv.lease] : [])))];
  const ttls = new Map<string, number>();
  for (let i = 0; i < leaseIds.length; i += PARALLEL_TTL_READS) {
    await Promise.all(
      leaseIds.slice(i, i + PARALLEL_TTL_READS).map(async (id) => ttls.set(id, await etcd.timeToLive(id))),
    );
  }
  const leases = subnets.map((kv): FlannelLeaseJson => {
    let value: unknown;
    try {
      value = JSON.parse(kv.value);
    } catch {
      value = kv.value; // the control plane reports it as malformed
    }
    return {
      key: kv.key.slice(subnetsPrefix.length),
      value,
      ttlSeconds: kv.lease ? (ttls.get(kv.lease) ?? -1) : null,
    };
  });
  return { config, leases };
}

function parseEndpoints(value: string | boolean | undefined): string[] {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new UsageError(
      '--etcd-endpoints is required: the URL(s) of the etcd flannel uses, comma-separated.',
    );
  }
  return value
    .split(',')
    .map((text) => text.trim())
    .filter((text) => text !== '');
}

function parsePrefix(value: string | boolean | undefined): string {
  const prefix = typeof value === 'string' ? value : DEFAULT_ETCD_PREFIX;
  if (!prefix.startsWith('/') || prefix.length < 2) {
    throw new UsageError(
      `--etcd-prefix must be an etcd key path like ${DEFAULT_ETCD_PREFIX}, not "${prefix}".`,
    );
  }
  return prefix.replace(/\/+$/, '');
}

const stringOption = (value: string | boolean | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** POST /v1/admin/import: the request body to the domain's ImportRequest, the result to JSON. */
import { formatCidr } from '../cidr.js';
import { ValidationError } from '../errors.js';
import type { FlannelLeaseRecord, ImportEntry } from '../import-plan.js';
import type { ImportRequest, ImportResult } from '../import-service.js';
import { toFlannelJson } from '../network-config.js';
import type { ImportEntryJson, ImportReportJson } from './contract.js';

/** A registry of a thousand hosts is ~150 KB; this leaves room for ten times that. */
export const MAX_IMPORT_BODY_BYTES = 2 * 1024 * 1024;
const MAX_LEASES = 10_000;
const REQUEST_FIELDS = new Set(['apply', 'config', 'leases']);
const LEASE_FIELDS = new Set(['key', 'value', 'ttlSeconds']);

/** Shape only; what the values mean (subnets, addresses, the config) is the service's to judge. */
export function parseImportRequest(body: Record<string, unknown>): ImportRequest {
  for (const key of Object.keys(body)) {
    if (!REQUEST_FIELDS.has(key))
      throw new ValidationError(`Unknown field "${clip(key)}"; allowed: apply, config, leases.`);
  }
  if (typeof body.apply !== 'boolean') throw new ValidationError('apply: required, true or false.');
  if (!Array.isArray(body.leases)) throw new ValidationError('leases: required, a list (may be empty).');
  if (body.leases.length > MAX_LEASES) throw new ValidationError(`leases: at most ${MAX_LEASES} entries.`);
  const config = body.config;
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw new ValidationError("config: the registry's network config as a JSON object, or null.");
  }

  const seen = new Set<string>();
  const leases: FlannelLeaseRecord[] = body.leases.map((item: unknown, i) => {
    const at = `leases[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new ValidationError(`${at}: must be an object {key, value, ttlSeconds}.`);
    const entry = item as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (!LEASE_FIELDS.has(key))
        throw new ValidationError(`${at}: unknown field "${clip(key)}"; allowed: key, value, ttlSeconds.`);
    }
    if (typeof entry.key !== 'string' || entry.key === '' || entry.key.length > 64)
      throw new ValidationError(`${at}.key: required, the subnet key as flannel writes it (10.244.7.0-24).`);
    if (seen.has(entry.key)) throw new ValidationError(`${at}.key: ${clip(entry.key)} is listed twice.`);
    seen.add(entry.key);
    const ttl = entry.ttlSeconds;
    if (ttl !== null && (typeof ttl !== 'number' || !Number.isInteger(ttl)))
      throw new ValidationError(`${at}.ttlSeconds: required, whole seconds left on the etcd lease, or null.`);
    return { key: entry.key, value: entry.value, ttlSeconds: ttl };
  });
  return { apply: body.apply, config: config === null ? undefined : config, leases };
}

export function importResultToJson(result: ImportResult): ImportReportJson {
  const leases = result.entries.map(entryToJson);
  const count = (action: ImportEntryJson['action']) => leases.filter((l) => l.action === action).length;
  return {
    applied: result.applied,
    config: {
      action: result.configAction,
      value: toFlannelJson(result.config) as unknown as Record<string, unknown>,
    },
    leases,
    summary: {
      adopt: count('adopt'),
      adopted: count('adopted'),
      unchanged: count('unchanged'),
      skipped: count('skip'),
    },
  };
}

function entryToJson(entry: ImportEntry): ImportEntryJson {
  return {
    subnet: entry.subnet ? formatCidr(entry.subnet) : entry.key,
    publicIp: entry.publicIp ?? null,
    ttlSeconds: entry.ttlSeconds,
    instanceId: entry.instanceId ?? null,
    networkInterfaceId: entry.networkInterfaceId ?? null,
    routes: entry.routes.map((r) => ({
      routeTableId: r.routeTableId,
      target: r.target ?? null,
      action: r.action,
    })),
    action: entry.outcome,
    ...(entry.reason ? { reason: { code: entry.reason.code, message: entry.reason.message } } : {}),
    ...(entry.pendingRouteTableIds ? { pendingRouteTableIds: [...entry.pendingRouteTableIds] } : {}),
  };
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

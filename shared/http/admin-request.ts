/**
 * The admin routes' HTTP reading: which route a request is for, its {subnet} segment, its
 * query, `limit` and `If-Match`; and the config's answer with its ETag. Refusals are
 * ValidationErrors that say what to send instead. functions/admin.ts only dispatches.
 */
import { MAX_PAGE_SIZE } from '../admin-service.js';
import { ValidationError } from '../errors.js';
import { toFlannelJson } from '../network-config.js';
import type { StoredConfig } from '../ports.js';
import { ADMIN_PATHS } from './contract.js';
import { type HttpEvent, type HttpResult, headerValue, json, routeOf } from './middleware.js';

const LEASE_PREFIX = `${ADMIN_PATHS.leases}/`;
export const LEASE_ROUTE = `${ADMIN_PATHS.leases}/{subnet}`;
export const ADMIN_METHODS: Record<string, readonly string[]> = {
  [ADMIN_PATHS.leases]: ['GET'],
  [LEASE_ROUTE]: ['GET', 'DELETE'],
  [ADMIN_PATHS.routes]: ['GET'],
  [ADMIN_PATHS.config]: ['GET', 'PUT'],
  [ADMIN_PATHS.reconcile]: ['POST'],
  [ADMIN_PATHS.import]: ['POST'],
};

/**
 * The route template: API Gateway's routeKey; where a local emulator leaves it out, the
 * raw path, with anything under /v1/admin/leases/ taken as the {subnet} route (so
 * `/v1/admin/leases/../config` is a bad subnet, 400, not another route).
 */
export function adminRoute(event: HttpEvent): { method: string; path: string; template: string } {
  const { method, path, routeKey } = routeOf(event);
  const keyed = routeKey.slice(routeKey.indexOf(' ') + 1);
  if (keyed === LEASE_ROUTE || path.startsWith(LEASE_PREFIX)) return { method, path, template: LEASE_ROUTE };
  return { method, path, template: keyed in ADMIN_METHODS ? keyed : path };
}

/** The {subnet} segment, decoded once; an encoded `/` or a further segment fails parseLeaseKey. */
export function subnetKeyOf(event: HttpEvent, path: string): string {
  const raw = event.pathParameters?.subnet ?? path.slice(LEASE_PREFIX.length);
  try {
    return raw.includes('%') ? decodeURIComponent(raw) : raw;
  } catch {
    throw new ValidationError('Invalid subnet in the path: bad percent-encoding. Write it as 10.244.7.0-24.');
  }
}

/** The query parameters, refusing any not in `allowed` (payload v2 joins repeated ones with commas). */
export function queryOf<K extends string>(
  event: HttpEvent,
  allowed: readonly K[],
): Partial<Record<K, string>> {
  // No prototype: a `__proto__` parameter must be a key like any other (and refused as unknown).
  const params: Record<string, string> = Object.create(null);
  if (event.queryStringParameters) {
    for (const [key, value] of Object.entries(event.queryStringParameters))
      if (value !== undefined) params[key] = value;
  } else if (event.rawQueryString) {
    new URLSearchParams(event.rawQueryString).forEach((value, key) => {
      params[key] = key in params ? `${params[key]},${value}` : value;
    });
  }
  for (const key of Object.keys(params)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw new ValidationError(
        `Unknown query parameter "${key.slice(0, 40)}"; allowed: ${allowed.join(', ')}.`,
      );
    }
  }
  return params as Partial<Record<K, string>>;
}

export function parseLimit(text: string): number {
  if (!/^[1-9][0-9]{0,3}$/.test(text) || Number(text) > MAX_PAGE_SIZE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, not "${text.slice(0, 20)}".`,
    );
  }
  return Number(text);
}

/** The config as flannel JSON; its version as a strong ETag, the condition `config set` may send back. */
export function configResponse(stored: StoredConfig): HttpResult {
  return json(200, toFlannelJson(stored.config), {
    etag: `"${stored.version}"`,
    'last-modified': stored.updatedAt.toUTCString(),
  });
}

/** `If-Match: "7"` (or bare 7): publish only over version 7. Absent: no condition. */
export function ifMatchVersion(event: HttpEvent): number | undefined {
  const value = headerValue(event, 'if-match')?.trim();
  if (value === undefined || value === '') return undefined;
  const match = /^"?([1-9][0-9]{0,9})"?$/.exec(value);
  if (!match || value.startsWith('"') !== value.endsWith('"')) {
    throw new ValidationError(
      `If-Match must be the ETag of GET ${ADMIN_PATHS.config} (a version, like "3"), not ${value.slice(0, 40)}.`,
    );
  }
  return Number(match[1]);
}

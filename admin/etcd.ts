/**
 * A small etcd v3 client over etcd's JSON gateway (POST /v3/kv/range, /v3/lease/timetolive):
 * enough to read a flannel registry, with no gRPC dependency. Keys and values travel base64
 * encoded; int64 fields (lease ids, TTLs, counts) as decimal strings. TLS as flannel's
 * --etcd-cafile/--etcd-certfile/--etcd-keyfile, through node:https.
 * https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** PEM texts, as read from flannel's --etcd-cafile/--etcd-certfile/--etcd-keyfile. */
export interface EtcdTls {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

export interface EtcdKeyValue {
  readonly key: string;
  readonly value: string;
  /** the etcd lease id (decimal), undefined when the key is on no lease */
  readonly lease: string | undefined;
}

/** etcd answered nothing on any endpoint: a refused connection, a timeout, TLS trouble. */
export class EtcdUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EtcdUnavailableError';
  }
}

/** etcd answered, but not as a v3 JSON gateway does (a 4xx, an auth error, not JSON). */
export class EtcdRequestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EtcdRequestError';
  }
}

/** Keys per range request; the rest follows page by page. */
const PAGE_SIZE = 500;
const DEFAULT_TIMEOUT_MS = 5000;

export class EtcdClient {
  private readonly endpoints: readonly URL[];
  /** the endpoint that answered last: tried first next time */
  private preferred = 0;

  constructor(
    endpoints: readonly string[],
    private readonly options: { tls?: EtcdTls; timeoutMs?: number } = {},
  ) {
    if (endpoints.length === 0) throw new Error('No etcd endpoint given.');
    this.endpoints = endpoints.map((text) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new Error(`etcd endpoint "${text}" is not a URL (expected like http://127.0.0.1:2379).`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`etcd endpoint "${text}" must be http:// or https://.`);
      return url;
    });
  }

  /** Every key under `prefix` (which should end in "/"), in key order, with its lease id. */
  async listPrefix(prefix: string): Promise<EtcdKeyValue[]> {
    const rangeEnd = prefixEnd(Buffer.from(prefix, 'utf8'));
    const found: EtcdKeyValue[] = [];
    let from = Buffer.from(prefix, 'utf8');
    for (;;) {
      const page = await this.post<{
        kvs?: { key?: string; value?: string; lease?: string }[];
        more?: boolean;
      }>('/v3/kv/range', {
        key: from.toString('base64'),
        range_end: rangeEnd.toString('base64'),
        limit: PAGE_SIZE,
      });
      const kvs = page.kvs ?? [];
      for (const kv of kvs) {
        const key = Buffer.from(kv.key ?? '', 'base64');
        found.push({
          key: key.toString('utf8'),
          value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
          lease: kv.lease && kv.lease !== '0' ? kv.lease : undefined,
        });
      }
      const last = kvs.at(-1)?.key;
      if (!page.more || last === undefined) return found;
      from = Buffer.concat([Buffer.from(last, 'base64'), Buffer.from([0])]);
    }
  }

  /** Seconds left on the lease; 0 or less once it has expired (etcd says -1). */
  async timeToLive(leaseId: string): Promise<number> {
    const answer = await this.post<{ TTL?: string }>('/v3/lease/timetolive', { ID: leaseId });
    const ttl = Number(answer.TTL ?? '-1');
    return Number.isFinite(ttl) ? ttl : -1;
  }

  private async post<T>(path: string, body: object): Promise<T> {
    const { ca, cert, key } = this.options.tls ?? {};
    const tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
    const failures: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      let answer: { status: number; text: string };
      try {
        answer = await send(new URL(path, endpoint), body, tls, this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      } catch (error) {
        failures.push(`${endpoint.origin}: ${(error as Error).message}`);
        continue;
      }
      this.preferred = index;
      let parsed: unknown;
      try {
        parsed = JSON.parse(answer.text);
      } catch {
        throw new EtcdRequestError(
          `${endpoint.origin}${path} answered HTTP ${answer.status} with no JSON: is this an etcd v3 endpoint?`,
        );
      }
      if (answer.status !== 200) {
        const message =
          (parsed as { message?: unknown; error?: unknown }).message ?? (parsed as { error?: unknown }).error;
        throw new EtcdRequestError(
          `${endpoint.origin}${path} refused the request (HTTP ${answer.status}): ${String(message ?? answer.text).slice(0, 200)}`,
        );
      }
      return parsed as T;
    }
    throw new EtcdUnavailableError(`Cannot reach etcd: ${failures.join('; ')}.`);
  }
}

/** The range_end that selects every key starting with `prefix`: the prefix with its last byte plus one. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

function send(
  url: URL,
  body: object,
  tls: { ca?: string; cert?: string; key?: string },
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const options = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      timeout: timeoutMs,
    };
    const req =
      url.protocol === 'https:' ? httpsRequest(url, { ...options, ...tls }) : httpRequest(url, options);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    // node's messages name the cause already: "connect ECONNREFUSED 127.0.0.1:2379"
    req.on('error', (error) => reject(new Error(error.message)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.end(payload);
  });
}

/**
 * SigV4 over query strings: what the client sends must be what it signed. AWS decodes the
 * query it receives with RFC 3986 rules (`+` is a plus sign, a space is %20) and signs that;
 * a client that signs `a b` as %20 but sends `a+b` (URLSearchParams) is refused.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../shared/http/api-client.js';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
let received: IncomingMessage | undefined;
let server: ReturnType<typeof createServer>;
let apiUrl: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    received = request;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{}');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

/** What API Gateway does: rebuild the request as received (RFC 3986 decoding) and sign it again. */
async function signatureOverReceived(request: IncomingMessage): Promise<string> {
  const url = new URL(request.url ?? '/', 'http://x');
  const query: Record<string, string> = {};
  for (const pair of url.search.slice(1).split('&').filter(Boolean)) {
    const [k = '', v = ''] = pair.split('=');
    query[decodeURIComponent(k)] = decodeURIComponent(v);
  }
  const authorization = String(request.headers.authorization);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(request.headers[name]);
  const amzDate = String(request.headers['x-amz-date']);
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const signer = new SignatureV4({
    service: 'execute-api',
    region: 'us-east-1',
    credentials,
    sha256: Sha256,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: request.method ?? 'GET',
      hostname: '127.0.0.1',
      path: url.pathname,
      query,
      headers,
    }),
    { signingDate },
  );
  return String(signed.headers.authorization);
}

describe('the API client signs and sends query values identically (SigV4)', () => {
  it('sends a space as %20, and the signature over what arrived matches the one sent', async () => {
    const client = new ApiClient({ apiUrl, region: 'us-east-1', credentials: async () => credentials });

    await client.request('GET', '/v1/admin/leases', { query: { nextToken: 'a b', limit: "it's" } });

    expect(received?.url).toBe('/v1/admin/leases?nextToken=a%20b&limit=it%27s');
    expect(await signatureOverReceived(received!)).toBe(received?.headers.authorization);
  });
});

describe("the agent and the grant interval's 429", () => {
  it('retries a 429 TooManyRequests after its Retry-After, as it does a 503', async () => {
    const { decideOnFailure } = await import('../../agent/errors.js');
    const { ApiError } = await import('../../shared/http/api-client.js');
    const tooSoon = new ApiError(429, 'TooManyRequests', 'one new grant per 30 s', { retryAfterSeconds: 20 });
    const unavailable = new ApiError(503, 'ServiceUnavailable', 'EC2 is throttling', {
      retryAfterSeconds: 20,
    });
    const context = { hadLease: false, sentHint: false };

    expect(decideOnFailure(tooSoon, context)).toEqual({
      action: 'retry',
      message: 'one new grant per 30 s',
      retryAfterSeconds: 20,
    });
    expect(decideOnFailure(unavailable, context).action).toBe('retry');
  });
});

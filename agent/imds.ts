/**
 * The EC2 instance metadata service, IMDSv2 only: a session token is PUT first and
 * sent with every GET (IMDSv1's token-less GETs are commonly disabled, and should be).
 *
 * The token answer is what the hop limit stops: with the default
 * http-put-response-hop-limit of 1, a process in a container (one extra hop) sends the
 * PUT but never sees the answer, so the PUT times out. That case gets its own message.
 */
import { isIp } from '../shared/cidr.js';

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
/** six hours, the maximum IMDS accepts */
const TOKEN_TTL_SECONDS = 21_600;

export interface ImdsOptions {
  /** default http://169.254.169.254; tests point it at a local server */
  endpoint?: string;
  /** per request; default 2 s (IMDS answers in microseconds when it answers at all) */
  timeoutMs?: number;
  now?: () => number;
}

export interface InstanceIdentity {
  instanceId: string;
  privateIp: string;
  region: string;
}

export class ImdsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImdsError';
  }
}

export class ImdsClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private token: { value: string; expiresAt: number } | undefined;

  constructor(options: ImdsOptions = {}) {
    this.endpoint = (options.endpoint ?? DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  async identity(): Promise<InstanceIdentity> {
    const instanceId = (await this.get('/latest/meta-data/instance-id')).trim();
    const privateIp = (await this.get('/latest/meta-data/local-ipv4')).trim();
    const document = await this.get('/latest/dynamic/instance-identity/document');
    let region: unknown;
    try {
      region = (JSON.parse(document) as { region?: unknown }).region;
    } catch (error) {
      throw new ImdsError(`IMDS returned an instance identity document that is not JSON: ${clip(document)}`, {
        cause: error,
      });
    }
    if (!/^i-[0-9a-f]+$/.test(instanceId)) {
      throw new ImdsError(
        `IMDS returned "${clip(instanceId)}" as instance id; expected i-0123456789abcdef0.`,
      );
    }
    if (!isIp(privateIp)) {
      throw new ImdsError(
        `IMDS returned "${clip(privateIp)}" as local-ipv4; an IPv4 address was expected. Set --private-ip.`,
      );
    }
    if (typeof region !== 'string' || region === '') {
      throw new ImdsError('the instance identity document has no region; set --region.');
    }
    return { instanceId, privateIp, region };
  }

  /** GET with the session token; a token that IMDS no longer accepts (401) is replaced once. */
  async get(path: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.sessionToken();
      const response = await this.fetch(path, {
        method: 'GET',
        headers: { 'x-aws-ec2-metadata-token': token },
      });
      const text = await response.text();
      if (response.ok) return text;
      if (response.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      if (response.status === 404) throw new ImdsError(`IMDS has no ${path} (404).`);
      throw new ImdsError(`IMDS answered ${response.status} to GET ${path}: ${clip(text)}`);
    }
  }

  private async sessionToken(): Promise<string> {
    // Renew a minute early so a token never expires between the check and its use.
    if (this.token && this.token.expiresAt - 60_000 > this.now()) return this.token.value;
    let response: Response;
    try {
      response = await this.fetch('/latest/api/token', {
        method: 'PUT',
        headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) },
      });
    } catch (error) {
      if (error instanceof ImdsTimeout) {
        throw new ImdsError(
          `IMDSv2 did not answer the token request at ${this.endpoint} within ${this.timeoutMs} ms. ` +
            'Inside a container this is the hop limit: the answer is dropped one hop short. Raise it with ' +
            '`aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2` ' +
            '(or in the launch template), or run the agent on the host network. ' +
            'Not on EC2? Use local mode: --local-instance-id and --private-ip.',
          { cause: error },
        );
      }
      throw error;
    }
    const text = await response.text();
    if (response.status === 403) {
      throw new ImdsError(
        'IMDS refused the token request (403): the metadata endpoint is turned off for this instance. ' +
          'Turn it on with `aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled`.',
      );
    }
    if (!response.ok || text.trim() === '') {
      throw new ImdsError(`IMDS answered ${response.status} to the token request: ${clip(text)}`);
    }
    this.token = { value: text.trim(), expiresAt: this.now() + TOKEN_TTL_SECONDS * 1_000 };
    return this.token.value;
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.endpoint}${path}`, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      if (error instanceof Error && error.name === 'TimeoutError') throw new ImdsTimeout(path);
      throw new ImdsError(
        `cannot reach IMDS at ${this.endpoint} (${causeText(error)}). ` +
          'On EC2, check that the metadata endpoint is enabled; elsewhere use local mode: --local-instance-id and --private-ip.',
        { cause: error },
      );
    }
  }
}

class ImdsTimeout extends ImdsError {
  constructor(path: string) {
    super(`IMDS request ${path} timed out`);
    this.name = 'ImdsTimeout';
  }
}

function causeText(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

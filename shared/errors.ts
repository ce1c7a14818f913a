/**
 * One error hierarchy for the whole control plane. Every error a person can act on
 * carries a stable `code`, an HTTP `status` and `expose = true`; the HTTP layer
 * (`httpErrors` in shared/http/middleware.ts) is the one place that turns them into
 * responses. Anything that is not a VpcLeaseError is a bug and is answered as a generic 500.
 *
 * The adapters (shared/adapters) translate every AWS SDK error into these: the core tests
 * `instanceof`, never an AWS error code.
 */
export type ErrorCode =
  | 'ValidationError'
  | 'Forbidden'
  | 'NotFound'
  | 'Conflict'
  | 'RouteLimitExceeded'
  | 'SubnetsExhausted'
  | 'ForeignRoute'
  | 'TooManyRequests'
  | 'PayloadTooLarge'
  | 'UnsupportedMediaType'
  | 'MethodNotAllowed'
  | 'Throttled'
  | 'ServiceUnavailable'
  | 'ConfigMissing'
  | 'InternalError';

export interface VpcLeaseErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class VpcLeaseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** true when the message is written for the caller and safe to return as is. */
  readonly expose: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, status: number, message: string, options: VpcLeaseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VpcLeaseError';
    this.code = code;
    this.status = status;
    this.expose = status < 500 || status === 503;
    this.details = options.details;
  }
}

export class ValidationError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('ValidationError', 400, message, options);
    this.name = 'ValidationError';
  }
}

export class ForbiddenError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('Forbidden', 403, message, options);
    this.name = 'ForbiddenError';
  }
}

export class NotFoundError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('NotFound', 404, message, options);
    this.name = 'NotFoundError';
  }
}

export class MethodNotAllowedError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('MethodNotAllowed', 405, message, options);
    this.name = 'MethodNotAllowedError';
  }
}

/** A state conflict a person must resolve (e.g. a config change that would strand live leases). */
export class ConflictError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('Conflict', 409, message, options);
    this.name = 'ConflictError';
  }
}

export class RouteLimitExceededError extends VpcLeaseError {
  readonly used: number;
  readonly limit: number;
  readonly routeTableId: string | undefined;

  constructor(
    args: {
      used: number;
      limit: number;
      routeTableId?: string;
      /** 6 when the table's IPv6 routes are the full ones (AWS counts each family on its own) */
      family?: 4 | 6;
    },
    options?: VpcLeaseErrorOptions,
  ) {
    const where = args.routeTableId ? ` in route table ${args.routeTableId}` : '';
    const kind = args.family === 6 ? 'IPv6 routes' : 'routes';
    super(
      'RouteLimitExceeded',
      409,
      `Route table full${where}: ${args.used}/${args.limit} ${kind} in use. ` +
        'Raise the "Routes per route table" quota in Service Quotas and Backend.RouteLimit in the network config ' +
        '(publish it with `vpc-lease config set`), or switch this cluster to the vxlan backend.',
      { ...options, details: { used: args.used, limit: args.limit, routeTableId: args.routeTableId } },
    );
    this.name = 'RouteLimitExceededError';
    this.used = args.used;
    this.limit = args.limit;
    this.routeTableId = args.routeTableId;
  }
}

export class SubnetsExhaustedError extends VpcLeaseError {
  constructor(args: { network: string; total: number }, options?: VpcLeaseErrorOptions) {
    super(
      'SubnetsExhausted',
      409,
      `No free subnet left in ${args.network}: all ${args.total} subnets between SubnetMin and SubnetMax are leased. ` +
        'Release unused leases (`vpc-lease revoke`), or publish a config with a larger Network or a longer SubnetLen.',
      { ...options, details: { network: args.network, total: args.total } },
    );
    this.name = 'SubnetsExhaustedError';
  }
}

export class PayloadTooLargeError extends VpcLeaseError {
  constructor(limitBytes: number, options?: VpcLeaseErrorOptions) {
    super('PayloadTooLarge', 413, `Request body larger than ${limitBytes} bytes.`, options);
    this.name = 'PayloadTooLargeError';
  }
}

export class UnsupportedMediaTypeError extends VpcLeaseError {
  constructor(message: string, options?: VpcLeaseErrorOptions) {
    super('UnsupportedMediaType', 415, message, options);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/**
 * A route vpc-lease does not own (the README's invariant 4: a gateway, NAT, peering... route, or
 * one of another prefix length) holds the destination a lease needs: it is never replaced.
 */
export class ForeignRouteError extends VpcLeaseError {
  constructor(
    details: { routeTableId: string; destination: string; target: string },
    options?: VpcLeaseErrorOptions,
  ) {
    super(
      'ForeignRoute',
      409,
      `Route table ${details.routeTableId} already routes ${details.destination} to ${details.target}, a route ` +
        'vpc-lease does not own and never replaces; the subnet is skipped from now on. Remove that route or retry for another subnet.',
      { ...options, details },
    );
    this.name = 'ForeignRouteError';
  }
}

/** One new grant per instance per GRANT_INTERVAL_SECONDS (docs/api.md): come back after retryAfterSeconds. */
export class TooManyRequestsError extends VpcLeaseError {
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number, options?: VpcLeaseErrorOptions) {
    super('TooManyRequests', 429, message, options);
    this.name = 'TooManyRequestsError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Seconds a caller is told to wait on a 503 when nothing better is known (AWS sent no Retry-After). */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * A failure a later attempt may not see: AWS throttling, or AWS unavailable (5xx, a timeout, a
 * dropped connection), after the SDK's own retries. 503 with Retry-After. The work is worth
 * trying again later, never a reason to give it up: a route left pending, a lease kept.
 */
export abstract class TransientError extends VpcLeaseError {
  readonly retryAfterSeconds: number;

  protected constructor(
    code: 'Throttled' | 'ServiceUnavailable',
    message: string,
    retryAfterSeconds: number,
    options?: VpcLeaseErrorOptions,
  ) {
    super(code, 503, message, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** AWS kept throttling after the SDK's retries: the caller should come back later. */
export class ThrottledError extends TransientError {
  constructor(
    service: string,
    retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS,
    options?: VpcLeaseErrorOptions,
  ) {
    super(
      'Throttled',
      `${service} is throttling this account's requests; nothing was lost. Retry after ${retryAfterSeconds} s.`,
      retryAfterSeconds,
      options,
    );
    this.name = 'ThrottledError';
  }
}

/** An AWS dependency failed (5xx, timeout) after retries, or the service is too busy to finish now. */
export class ServiceUnavailableError extends TransientError {
  constructor(
    message: string,
    retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS,
    options?: VpcLeaseErrorOptions,
  ) {
    super('ServiceUnavailable', message, retryAfterSeconds, options);
    this.name = 'ServiceUnavailableError';
  }
}

/**
 * A route table that no longer exists (EC2: InvalidRouteTableID.NotFound) was named in a route
 * write: deleted by hand, or a Backend.RouteTableID that was never right.
 */
export class RouteTableGoneError extends NotFoundError {
  readonly routeTableId: string | undefined;

  constructor(routeTableId: string | undefined, options?: VpcLeaseErrorOptions) {
    super(
      `Route table ${routeTableId ?? '(unknown)'} does not exist; check Backend.RouteTableID in the network config.`,
      options,
    );
    this.name = 'RouteTableGoneError';
    this.routeTableId = routeTableId;
  }
}

export class ConfigMissingError extends VpcLeaseError {
  constructor(options?: VpcLeaseErrorOptions) {
    super(
      'ConfigMissing',
      503,
      'No network config has been published yet. An operator must publish one: `vpc-lease config set network.json`.',
      options,
    );
    this.name = 'ConfigMissingError';
  }
}

export const isVpcLeaseError = (error: unknown): error is VpcLeaseError => error instanceof VpcLeaseError;

/** A config publish whose capacity is below the places held now (hosts joined while it was checked). */
export class CapacityBelowUseError extends ConflictError {
  readonly used: number;
  readonly capacity: number;

  constructor(args: { used: number; capacity: number; routeLimit: number }, options?: VpcLeaseErrorOptions) {
    super(
      `Hosts joined while this config was being published: ${args.used} leases hold a route ` +
        `(expired ones included until their routes are removed), more than the ${args.capacity} that ` +
        `Backend.RouteLimit ${args.routeLimit} leaves; the config was not changed. Retry, or revoke leases first.`,
      { ...options, details: { used: args.used, capacity: args.capacity, routeLimit: args.routeLimit } },
    );
    this.name = 'CapacityBelowUseError';
    this.used = args.used;
    this.capacity = args.capacity;
  }
}

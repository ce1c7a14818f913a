/**
 * Fault injection at the AWS SDK's middleware level, for the reliability suites.
 *
 * What EC2 and DynamoDB *do* always comes from moto; what no engine gives on demand is
 * injected here, below the SDK's retry and deserializer, so the SDK classifies, retries
 * and counts an injected failure exactly as it would a real one:
 *
 *   - `before`: the request never reaches moto; the client gets AWS's error response
 *     (status + the service's own error body) or, for a timeout, the transport error;
 *   - `after`:  moto performs the request (a write happened), then the client gets the
 *     error instead of moto's answer: the nastiest case, e.g. a lease written whose
 *     grant the caller saw fail, or a route created whose CreateRoute "timed out".
 *
 * Every injected error says so in its message ("Injected ..."), with AWS's real code as
 * its name, so a log or a failing assertion shows at once which failures were made up.
 *
 * Decisions are deterministic: a seeded generator (seed from fast-check) decides per SDK
 * attempt, and an optional Turnstile serialises the SDK calls of concurrently running
 * operations in an order drawn from the same kind of generator, so a seed replays the same
 * interleaving and the same faults.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable } from 'node:stream';
import { HttpResponse } from '@smithy/protocol-http';

export type AwsService = 'DynamoDB' | 'EC2';

export type InjectedFaultKind =
  /** DynamoDB TransactWriteItems cancelled with TransactionConflict reasons only (no ConditionalCheckFailed) */
  | 'InjectedTransactionConflict'
  /** DynamoDB ProvisionedThroughputExceededException (400, throttling) */
  | 'InjectedThroughputExceeded'
  /** EC2 RequestLimitExceeded (503, throttling) */
  | 'InjectedRequestLimitExceeded'
  /** a 5xx: DynamoDB InternalServerError (500), EC2 InternalError (500) */
  | 'InjectedInternalError'
  /** EC2 Unavailable (503) */
  | 'InjectedUnavailable'
  /** the socket timed out: a transport error (TimeoutError / ETIMEDOUT), no HTTP answer */
  | 'InjectedTimeout'
  /** EC2 RouteLimitExceeded on CreateRoute (400): moto enforces no routes-per-table quota */
  | 'InjectedRouteLimitExceeded'
  /** no failure: the call waits for `until` (before: to reach moto; after: to return), to force an interleaving */
  | 'InjectedPause';

export type FaultTiming = 'before' | 'after';

export interface FaultDecision {
  readonly kind: InjectedFaultKind;
  readonly timing: FaultTiming;
  /**
   * InjectedTransactionConflict: bit i set = item i of the transaction conflicts (the others
   * say None). Default: every item. A mask that selects none of the items selects the last.
   */
  readonly conflictMask?: number;
  /** InjectedPause: what the call waits for (do not pause a call that holds a Turnstile turn others need) */
  readonly until?: Promise<unknown>;
}

export interface SdkCall {
  readonly service: AwsService;
  /** without the Command suffix: TransactWriteItems, CreateRoute, ... */
  readonly command: string;
  /** the low-level command input (DynamoDB: marshalled) */
  readonly input: Record<string, unknown>;
  /** the label of the operation making the call (Turnstile.run), when there is one */
  readonly operation: string | undefined;
}

export type FaultPolicy = (call: SdkCall) => FaultDecision | undefined;

export interface InjectedFault extends FaultDecision {
  readonly service: AwsService;
  readonly command: string;
  readonly operation: string | undefined;
}

/** Calls that change state: an `after` fault on one of these means the change happened unseen. */
export const MUTATIONS: Readonly<Record<AwsService, ReadonlySet<string>>> = {
  DynamoDB: new Set(['TransactWriteItems', 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']),
  EC2: new Set(['CreateRoute', 'ReplaceRoute', 'DeleteRoute', 'ModifyNetworkInterfaceAttribute']),
};

/** Which kinds each service can give, and for which commands. */
export function faultApplies(kind: InjectedFaultKind, service: AwsService, command: string): boolean {
  switch (kind) {
    case 'InjectedTransactionConflict':
      return service === 'DynamoDB' && command === 'TransactWriteItems';
    case 'InjectedThroughputExceeded':
      return service === 'DynamoDB';
    case 'InjectedRequestLimitExceeded':
    case 'InjectedUnavailable':
      return service === 'EC2';
    case 'InjectedRouteLimitExceeded':
      return service === 'EC2' && command === 'CreateRoute';
    case 'InjectedInternalError':
    case 'InjectedTimeout':
    case 'InjectedPause':
      return true;
  }
}

// ---------------------------------------------------------------- deterministic randomness

/** mulberry32: a tiny seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- policies

export interface SeededFaultOptions {
  readonly seed: number;
  /** chance that an SDK attempt fails, 0-1 */
  readonly rate: number;
  /** the kinds to draw from (each only where it applies) */
  readonly kinds: readonly InjectedFaultKind[];
  /** chance that a fault on a mutation comes after the write, 0-1 (default 0.5) */
  readonly afterShare?: number;
  /**
   * Faults come in bursts, as throttling and hot-item conflicts do: a fault repeats for the
   * next `burst - 1` attempts of the same command by the same operation (default 1: none).
   * Bursts longer than the SDK's and the store's retries are what reach the services.
   */
  readonly burst?: number;
}

/** Faults drawn from a seeded generator, one draw per SDK attempt, in call order. */
export function seededFaults(options: SeededFaultOptions): FaultPolicy {
  const random = seededRandom(options.seed);
  const afterShare = options.afterShare ?? 0.5;
  const bursts = new Map<string, { decision: FaultDecision; left: number }>();
  return (call) => {
    const key = `${call.operation ?? ''}|${call.service}|${call.command}`;
    const burst = bursts.get(key);
    if (burst && burst.left > 0) {
      burst.left--;
      return burst.decision;
    }
    const decision = draw(call);
    if (decision && (options.burst ?? 1) > 1) bursts.set(key, { decision, left: options.burst! - 1 });
    return decision;
  };

  function draw(call: SdkCall): FaultDecision | undefined {
    // Always four draws per attempt, so one decision never shifts the ones after it.
    const roll = random();
    const pick = random();
    const when = random();
    const mask = 1 + Math.floor(random() * 7);
    if (roll >= options.rate) return undefined;
    const kinds = options.kinds.filter((k) => faultApplies(k, call.service, call.command));
    if (kinds.length === 0) return undefined;
    const kind = kinds[Math.floor(pick * kinds.length)]!;
    const after = MUTATIONS[call.service].has(call.command) && kind !== 'InjectedRouteLimitExceeded';
    return {
      kind,
      timing: after && when < afterShare ? 'after' : 'before',
      ...(kind === 'InjectedTransactionConflict' ? { conflictMask: mask } : {}),
    };
  }
}

/** One fault for the calls `match` selects, `times` times (default: every time). */
export function targetedFault(
  match: (call: SdkCall) => boolean,
  decision: FaultDecision,
  times = Number.POSITIVE_INFINITY,
): FaultPolicy {
  let left = times;
  return (call) => {
    if (left <= 0 || !match(call)) return undefined;
    left--;
    return decision;
  };
}

/** A policy that can be switched while clients keep it: `faults.policy = ...`. */
export interface FaultSwitch {
  policy: FaultPolicy | undefined;
  /** every fault injected so far, in order */
  readonly injected: InjectedFault[];
}

export const createFaultSwitch = (policy?: FaultPolicy): FaultSwitch => ({ policy, injected: [] });

// ---------------------------------------------------------------- turnstile

/**
 * Serialises the SDK calls of concurrent operations, one call at a time, in an order
 * drawn from a seeded generator. Each operation runs inside `run()`; its calls wait at
 * the turnstile. A turn is given only once every running operation is either waiting for
 * one or done, so which operation goes next depends on the seed, not on timing (an
 * operation sleeping in an SDK backoff is simply waited for). Calls made outside `run()`
 * pass straight through.
 */
export class Turnstile {
  private readonly scope = new AsyncLocalStorage<{ label: string }>();
  private readonly running = new Set<{ label: string }>();
  private readonly waiting: { op: { label: string }; go: () => void }[] = [];
  private busy = false;
  /** the operation labels in the order they got their turns */
  readonly order: string[] = [];

  constructor(private readonly random: () => number) {}

  /** Runs `fn` as one operation; its SDK calls take turns with the other operations'. */
  async run<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const op = { label };
    this.running.add(op);
    try {
      return await this.scope.run(op, fn);
    } finally {
      this.running.delete(op);
      this.dispatch();
    }
  }

  /** The label of the operation this code runs in, if any. */
  current(): string | undefined {
    return this.scope.getStore()?.label;
  }

  /** Waits for this call's turn; returns the function that ends it. */
  async enter(): Promise<() => void> {
    const op = this.scope.getStore();
    if (!op || !this.running.has(op)) return () => {};
    await new Promise<void>((go) => {
      this.waiting.push({ op, go });
      this.dispatch();
    });
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.busy = false;
      this.dispatch();
    };
  }

  private dispatch(): void {
    if (this.busy || this.waiting.length === 0) return;
    const blocked = new Set(this.waiting.map((w) => w.op));
    for (const op of this.running) if (!blocked.has(op)) return; // someone is still computing
    const index = Math.floor(this.random() * this.waiting.length);
    const [next] = this.waiting.splice(index, 1);
    this.busy = true;
    this.order.push(next!.op.label);
    next!.go();
  }
}

// ---------------------------------------------------------------- the middleware

/** Anything the SDK clients accept middleware on. */
interface HasMiddleware {
  middlewareStack: {
    addRelativeTo(middleware: any, options: any): void;
  };
}

/**
 * Puts the fault switch (and the turnstile, when given) on a client, right inside the
 * SDK's deserializer: below the retry middleware, so each attempt is decided on its own
 * and counted by the call counter. For the DynamoDB document client pass the client it
 * wraps (`DynamoDBDocumentClient.from(client)` shares that client's stack).
 */
export function attachFaults(
  client: HasMiddleware,
  service: AwsService,
  faults: FaultSwitch,
  turnstile?: Turnstile,
): void {
  client.middlewareStack.addRelativeTo(
    (next: any, context: any) => async (args: any) => {
      const leave = turnstile ? await turnstile.enter() : () => {};
      try {
        const call: SdkCall = {
          service,
          command: String(context.commandName ?? 'Unknown').replace(/Command$/, ''),
          input: (args.input ?? {}) as Record<string, unknown>,
          operation: turnstile?.current(),
        };
        const decision = faults.policy?.(call);
        if (!decision) return await next(args);
        faults.injected.push({ ...decision, service, command: call.command, operation: call.operation });
        if (decision.kind === 'InjectedPause') {
          if (decision.timing === 'before') await decision.until;
          const answer = await next(args);
          if (decision.timing === 'after') await decision.until;
          return answer;
        }
        if (decision.timing === 'after') {
          const real = await next(args);
          await drain(real?.response?.body);
        }
        return failWith(decision, call);
      } finally {
        leave();
      }
    },
    {
      relation: 'after',
      toMiddleware: 'deserializerMiddleware',
      name: 'vpcLeaseInjectedFaults',
      override: true,
    },
  );
}

/** The error answer of `kind`, in the service's own wire format; a timeout is thrown instead. */
function failWith(decision: FaultDecision, call: SdkCall): { response: HttpResponse } {
  const { kind } = decision;
  const what = `${call.service} ${call.command}`;
  if (kind === 'InjectedTimeout') {
    throw Object.assign(new Error(`Injected timeout: ${what} got no answer before the socket timed out.`), {
      name: 'TimeoutError',
      code: 'ETIMEDOUT',
      $metadata: {},
    });
  }
  if (call.service === 'EC2') {
    const [status, code, message] = ec2Fault(kind, what);
    return { response: ec2ErrorResponse(status, code, message) };
  }
  if (kind === 'InjectedTransactionConflict') {
    const items = Array.isArray(call.input.TransactItems) ? call.input.TransactItems.length : 1;
    // Some items conflict, none fails its condition: the store must not read this as "taken".
    let mask = (decision.conflictMask ?? -1) & ((1 << items) - 1);
    if (mask === 0) mask = 1 << (items - 1);
    const reasons = Array.from({ length: items }, (_, i) =>
      mask & (1 << i)
        ? { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item (injected).' }
        : { Code: 'None' },
    );
    return {
      response: dynamoErrorResponse(400, 'TransactionCanceledException', {
        message: `Injected conflict: transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
        CancellationReasons: reasons,
      }),
    };
  }
  const [status, code, message] =
    kind === 'InjectedThroughputExceeded'
      ? [400, 'ProvisionedThroughputExceededException', `Injected throttling: ${what} exceeded throughput.`]
      : [500, 'InternalServerError', `Injected 5xx: internal server error on ${what}.`];
  return { response: dynamoErrorResponse(status, code, { message }) };
}

function ec2Fault(kind: InjectedFaultKind, what: string): [number, string, string] {
  switch (kind) {
    case 'InjectedRequestLimitExceeded':
      return [503, 'RequestLimitExceeded', `Injected throttling: request limit exceeded on ${what}.`];
    case 'InjectedUnavailable':
      return [503, 'Unavailable', `Injected 5xx: ${what} is unavailable.`];
    case 'InjectedRouteLimitExceeded':
      return [
        400,
        'RouteLimitExceeded',
        `Injected: the maximum number of routes has been reached (${what}).`,
      ];
    default:
      return [500, 'InternalError', `Injected 5xx: internal error on ${what}.`];
  }
}

function ec2ErrorResponse(status: number, code: string, message: string): HttpResponse {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error></Errors>` +
    '<RequestID>00000000-0000-0000-0000-00000000fa17</RequestID></Response>';
  return new HttpResponse({
    statusCode: status,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body: Readable.from([Buffer.from(body)]),
  });
}

function dynamoErrorResponse(status: number, code: string, fields: Record<string, unknown>): HttpResponse {
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, ...fields });
  return new HttpResponse({
    statusCode: status,
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-errortype': code,
      'x-amzn-requestid': 'INJECTEDFAULT0000000000000000000000000000000000000000',
    },
    body: Readable.from([Buffer.from(body)]),
  });
}

/** Reads a discarded response to its end, so its socket goes back to the pool. */
async function drain(body: unknown): Promise<void> {
  if (body && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    for await (const _ of body as AsyncIterable<unknown>) {
      // discard
    }
  }
}

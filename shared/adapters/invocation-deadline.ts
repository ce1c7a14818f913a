/**
 * The moment by which an invocation must have answered, carried with the invocation's
 * asynchronous work (AsyncLocalStorage), so that every AWS call made for it can see it
 * without being handed it: the SDK clients (aws-clients.ts) refuse a retry whose delay
 * would end after it, and abort a request still under way when it comes.
 *
 * Lambda stops an invocation at the function's timeout whatever it is doing; an answer
 * must be sent before then (DESIGN.md "HTTP API": no invocation outlives the timeout;
 * retries stop in time to answer 503). Outside an invocation (scripts, tests, the
 * reconcile's own loop) there is no deadline and nothing is bounded.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface InvocationDeadline {
  /** `performance.now()` milliseconds by which the answer must be under way */
  readonly at: number;
  /** aborted at `at`, with an InvocationDeadlineExceeded reason */
  readonly signal: AbortSignal;
}

/** The abort reason of a request cut at the deadline. */
export class InvocationDeadlineExceeded extends Error {
  constructor() {
    super('The invocation reached its deadline: the function must answer now.');
    this.name = 'InvocationDeadlineExceeded';
  }
}

const current = new AsyncLocalStorage<InvocationDeadline>();

/** The deadline of the invocation this code runs for, if any. */
export const currentDeadline = (): InvocationDeadline | undefined => current.getStore();

/** Milliseconds left before `deadline` (negative once it has passed). */
export const millisLeft = (deadline: InvocationDeadline): number => deadline.at - performance.now();

/**
 * Runs `work` with a deadline `millis` from now. The signal is aborted at the deadline if
 * `work` is still running then (its answer is the caller's business: middy's
 * timeoutEarly answers at that moment), and the timer is cleared when `work` settles.
 */
export async function withDeadline<R>(millis: number, work: () => Promise<R>): Promise<R> {
  const controller = new AbortController();
  const deadline: InvocationDeadline = { at: performance.now() + millis, signal: controller.signal };
  const timer = setTimeout(() => controller.abort(new InvocationDeadlineExceeded()), Math.max(0, millis));
  try {
    return await current.run(deadline, work);
  } finally {
    clearTimeout(timer);
  }
}

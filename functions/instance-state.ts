/**
 * EventBridge "EC2 Instance State-change Notification" (source aws.ec2). EventBridge
 * delivers at least once and out of order, so the handler decides from current state
 * (InstanceEvents.onInstanceState reads the lease and describes the instance afresh).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { createDependencies } from '../shared/adapters/dependencies.js';
import { lazyHandler } from '../shared/adapters/lazy-handler.js';
import { logger } from '../shared/adapters/observability.js';
import type { InstanceEvents, InstanceStateOutcome } from '../shared/instance-events.js';
import { INSTANCE_ID } from '../shared/lease.js';

export type InstanceStateEvent = EventBridgeEvent<
  'EC2 Instance State-change Notification',
  { 'instance-id'?: unknown; state?: unknown }
>;

export interface InstanceStateHandlerDependencies {
  instanceEvents: Pick<InstanceEvents, 'onInstanceState'>;
  logger: Logger;
}

export function buildInstanceStateHandler(deps: InstanceStateHandlerDependencies) {
  return middy<InstanceStateEvent, InstanceStateOutcome, Error, Context>()
    .use(injectLambdaContext(deps.logger, { resetKeys: true }))
    .handler(async (event) => {
      const instanceId = event.detail?.['instance-id'];
      const state = event.detail?.state;
      if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId) || typeof state !== 'string') {
        // Retrying a malformed event cannot help: log it and let it go.
        deps.logger.warn('ignoring malformed state-change event', {
          eventId: event.id,
          detail: event.detail,
        });
        return { action: 'none', reason: 'malformed event' };
      }
      deps.logger.appendKeys({ instanceId, eventState: state, eventId: event.id });
      const outcome = await deps.instanceEvents.onInstanceState(instanceId, state);
      deps.logger.info('state change handled', { outcome });
      if (outcome.action === 'ensured' && outcome.error) {
        // Throttled or EC2 unavailable: fail the invocation so Lambda's async retries (then the DLQ) take over.
        throw outcome.error;
      }
      return outcome;
    });
}

export const handler = lazyHandler(() =>
  buildInstanceStateHandler({ instanceEvents: createDependencies().instanceEvents, logger }),
);

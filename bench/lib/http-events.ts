/**
 * The events the cold-start runs and the simulated agents send: the same builders the
 * tests use (API Gateway HTTP API payload 2.0 with AWS_IAM, EventBridge, scheduler).
 */
export {
  hostArn,
  httpEvent,
  instanceStateEvent,
  OPERATOR_ARN,
  scheduledEvent,
  TEST_HOSTS,
} from '../../test/support/events.js';

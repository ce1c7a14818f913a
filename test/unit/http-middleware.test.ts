import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { RouteLimitExceededError } from '../../shared/errors.js';
import { httpHandler, json } from '../../shared/http/middleware.js';
import { quietLogger } from '../support/control-plane.js';
import { hostArn, httpEvent, lambdaContext } from '../support/events.js';

const event = () => httpEvent({ method: 'GET', path: '/v1/config', userArn: hostArn('i-0123456789abcdef0') });

describe('the HTTP middy chain', () => {
  it('answers a domain error with its status, code, message and details', async () => {
    const handler = httpHandler({ logger: quietLogger }, async () => {
      throw new RouteLimitExceededError({ used: 50, limit: 50, routeTableId: 'rtb-0123456789abcdef0' });
    });
    const res = await handler(event(), lambdaContext());
    expect(res.statusCode).toBe(409);
    const body = JSON.parse(res.body!);
    expect(body.error.code).toBe('RouteLimitExceeded');
    expect(body.error.message).toMatch(/50\/50 routes in use.*Raise.*vxlan/s);
    expect(body.error.details).toEqual({ used: 50, limit: 50, routeTableId: 'rtb-0123456789abcdef0' });
  });

  it('answers a bug with a generic 500 that leaks nothing', async () => {
    const handler = httpHandler({ logger: quietLogger }, async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'secret')");
    });
    const res = await handler(event(), lambdaContext());
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toMatch(/secret|TypeError|at /);
    expect(JSON.parse(res.body!).error.code).toBe('InternalError');
  });

  it('answers 503 with Retry-After, not a 500, when AWS calls outlast the function timeout', async () => {
    const handler = httpHandler({ logger: quietLogger }, () => new Promise(() => {}));
    const context = { ...lambdaContext(), getRemainingTimeInMillis: () => 1050 };
    const res = await handler(event(), context);
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(res.body as string).error.code).toBe('ServiceUnavailable');
  });

  it('passes a route’s answer through', async () => {
    const handler = httpHandler({ logger: quietLogger }, async () => json(200, { ok: true }));
    const res = await handler(event(), lambdaContext());
    expect(res).toMatchObject({ statusCode: 200, body: '{"ok":true}' });
  });

  it('publishes the metrics a request recorded, and nothing for a request that recorded none', async () => {
    const metrics = new Metrics({ namespace: 'VpcLeaseTest', serviceName: 'test' });
    const publish = vi.spyOn(metrics, 'publishStoredMetrics').mockImplementation(() => metrics);
    const handler = httpHandler({ logger: quietLogger, metrics }, async (e) => {
      if (e.rawPath === '/v1/lease') metrics.addMetric('LeasesGranted', MetricUnit.Count, 1);
      return json(200, {});
    });
    await handler(event(), lambdaContext());
    expect(publish).not.toHaveBeenCalled();
    await handler(
      httpEvent({ method: 'PUT', path: '/v1/lease', userArn: hostArn('i-0123456789abcdef0') }),
      lambdaContext(),
    );
    expect(publish).toHaveBeenCalledTimes(1);
  });
});

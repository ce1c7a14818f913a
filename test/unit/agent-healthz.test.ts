import { afterEach, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from '../../agent/healthz.js';

describe('health server', () => {
  let server: HealthServer | undefined;
  let other: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    await other?.close();
    server = undefined;
    other = undefined;
  });

  it('answers /healthz while live and /readyz once ready', async () => {
    const state = { live: true, ready: false };
    server = await startHealthServer(
      { isLive: () => state.live, isReady: () => state.ready },
      { ip: '127.0.0.1', port: 0 },
    );
    const get = (path: string) => fetch(`http://127.0.0.1:${server!.port}${path}`).then((r) => r.status);

    expect(await get('/healthz')).toBe(200);
    expect(await get('/readyz')).toBe(503);
    state.ready = true;
    expect(await get('/readyz')).toBe(200);
    state.live = false;
    expect(await get('/healthz')).toBe(503);
    expect(await get('/metrics')).toBe(404);
  });

  it('says which flag to change when the port is taken', async () => {
    const probe = { isLive: () => true, isReady: () => true };
    server = await startHealthServer(probe, { ip: '127.0.0.1', port: 0 });
    await expect(startHealthServer(probe, { ip: '127.0.0.1', port: server.port })).rejects.toThrow(
      /port is in use.*--healthz-port/,
    );
  });
});

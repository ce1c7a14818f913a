/**
 * Health endpoints like flanneld's --healthz-port: /healthz answers 200 while the agent
 * loop runs (for a liveness probe or a watchdog), /readyz 200 once subnet.env is written
 * and the lease has not expired (gate the container runtime on it). Binds 127.0.0.1
 * unless told otherwise: nothing outside the host needs to see it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthProbe {
  isLive(): boolean;
  isReady(): boolean;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  probe: HealthProbe,
  options: { ip: string; port: number },
): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const answer = (ok: boolean, text: string) => {
      response.writeHead(ok ? 200 : 503, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
      });
      response.end(`${text}\n`);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      answer(probe.isLive(), probe.isLive() ? 'vpc-lease-agent is running' : 'vpc-lease-agent is stopping');
    } else if (path === '/readyz') {
      answer(
        probe.isReady(),
        probe.isReady() ? 'lease held, subnet file written' : 'no live lease written yet',
      );
    } else {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('try /healthz or /readyz\n');
    }
  });
  // Probes must never keep the agent from exiting promptly.
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${options.ip}:${options.port}`;
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `the health server cannot listen on ${where}: the port is in use. Choose another --healthz-port, or 0 to turn it off.`
            : `the health server cannot listen on ${where}: ${error.message}. Check --healthz-ip and --healthz-port.`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.ip, () => {
      server.off('error', onError);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// The lab's small programs that run *inside* a network namespace (`ip netns exec NS node
// netns-helper.mjs ...`): plain JavaScript with node:net only, so each starts fast.
//
//   serve HOST PORT          TCP server; answers every connection with {"peer":"<its source address>"}
//   ask HOST PORT TIMEOUT_MS connects once; prints {"ok":true,"peer":...} or {"ok":false,"error":"EHOSTUNREACH"}
//   relay HOST PORT SOCKET   TCP listener on HOST:PORT that forwards every connection to the unix socket
//
// `serve` and `relay` print "listening" on stdout once bound.
import { connect, createServer } from 'node:net';

const [mode, host, portText, extra] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'serve') {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${JSON.stringify({ peer: socket.remoteAddress })}\n`);
  });
  server.listen(port, host, () => process.stdout.write('listening\n'));
} else if (mode === 'ask') {
  const timeoutMs = Number(extra ?? '3000');
  let reply = '';
  let done = false;
  const finish = (result) => {
    if (done) return;
    done = true;
    process.stdout.write(`${JSON.stringify(result)}\n`);
    socket.destroy();
  };
  const socket = connect({ host, port });
  socket.setTimeout(timeoutMs, () => finish({ ok: false, error: 'ETIMEDOUT' }));
  socket.on('data', (chunk) => {
    reply += chunk.toString();
  });
  socket.on('end', () => {
    try {
      finish({ ok: true, peer: JSON.parse(reply).peer });
    } catch {
      finish({ ok: false, error: `unexpected reply ${JSON.stringify(reply)}` });
    }
  });
  socket.on('error', (error) => finish({ ok: false, error: error.code ?? error.message }));
} else if (mode === 'relay') {
  const server = createServer((client) => {
    const upstream = connect({ path: extra });
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  server.listen(port, host, () => process.stdout.write('listening\n'));
} else {
  process.stderr.write('usage: netns-helper.mjs serve|ask|relay HOST PORT [TIMEOUT_MS|SOCKET]\n');
  process.exit(2);
}

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  eventNames,
  isMethod,
  parseArgs,
  type Api,
  type EventName,
  type Events,
} from '../../shared/contract';
import type { WireEvent, WireRequest, WireResponse } from '../../shared/wire';
import { CONTENT_SECURITY_POLICY } from './csp';

const COOKIE = 'tv_token';
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** What the server needs of the service: the API, its events, and upload intake. */
export type ServedService = Api & {
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
  acceptUpload(pushId: string, index: number, body: AsyncIterable<Uint8Array>): Promise<void>;
};

export interface ServerOptions {
  service: ServedService;
  /** The built renderer (out/renderer). */
  staticDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Fixed token, for tests; random otherwise. */
  token?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

/**
 * Browser mode: the built renderer and the API over a WebSocket, on 127.0.0.1 only. Every
 * request and connection needs the random token (given once in the URL, then kept in a
 * same-site, HTTP-only cookie); the Host and Origin headers must name this server.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  let port = 0;
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  const authorized = (req: IncomingMessage, url: URL): 'query' | 'cookie' | false => {
    if (sameToken(url.searchParams.get('token'), token)) return 'query';
    if (sameToken(readCookie(req.headers.cookie, COOKIE), token)) return 'cookie';
    return false;
  };

  const server = createServer((req, res) => {
    void handleHttp(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${err instanceof Error ? err.message : String(err)}`);
    });
  });

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowedHosts().has(req.headers.host ?? ''))
      return deny(res, 403, 'unexpected Host header');
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const auth = authorized(req, url);
    if (!auth)
      return deny(res, 401, 'missing or wrong token: open the URL that `tv serve` printed');
    if (auth === 'query') {
      // Keep the token out of the address bar and of later links: a cookie carries it from here.
      url.searchParams.delete('token');
      res.writeHead(303, {
        location: url.pathname + url.search,
        'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      });
      return void res.end();
    }
    const upload = /^\/api\/upload\/([\w-]{1,64})\/(\d{1,6})$/.exec(url.pathname);
    if (upload && req.method === 'PUT') {
      // A page on another origin cannot send the cookie with a PUT (SameSite), and must not try.
      if (req.headers.origin !== `http://${req.headers.host}`)
        return deny(res, 403, 'unexpected Origin');
      try {
        await options.service.acceptUpload(upload[1] as string, Number(upload[2]), req);
        res.writeHead(204);
        return void res.end();
      } catch (err) {
        req.resume();
        return deny(res, 400, err instanceof Error ? err.message : String(err));
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return deny(res, 405, 'method not allowed');
    await serveStatic(options.staticDir, url.pathname, res);
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const origin = req.headers.origin ?? '';
    const originOk = [...allowedHosts()].some((h) => origin === `http://${h}`);
    if (
      !allowedHosts().has(req.headers.host ?? '') ||
      !originOk ||
      !authorized(req, url) ||
      url.pathname !== '/api'
    ) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveApi(ws, options.service));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveApi(ws: WebSocket, service: ServedService): void {
  const unsubscribe = eventNames.map((event) =>
    service.on(event, (payload: Events[EventName]) => {
      if (ws.readyState === ws.OPEN)
        ws.send(JSON.stringify({ event, payload } satisfies WireEvent));
    }),
  );
  ws.on('close', () => unsubscribe.forEach((off) => off()));
  ws.on('message', (data) => {
    let request: WireRequest;
    try {
      request = JSON.parse(String(data)) as WireRequest;
    } catch {
      return ws.send(
        JSON.stringify({ id: -1, error: 'malformed request: not JSON' } satisfies WireResponse),
      );
    }
    const id = typeof request.id === 'number' ? request.id : -1;
    const reply = (response: WireResponse) => ws.send(JSON.stringify(response));
    void (async () => {
      if (!isMethod(request.method))
        throw new Error(`unknown API call "${String(request.method)}"`);
      const args = parseArgs(request.method, request.args);
      const fn = service[request.method] as (...a: unknown[]) => Promise<unknown>;
      return fn.apply(service, args as unknown[]);
    })().then(
      (result) => reply({ id, result }),
      (err: unknown) => reply({ id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

async function serveStatic(root: string, pathname: string, res: ServerResponse): Promise<void> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return deny(res, 400, 'malformed path: not valid percent-encoding');
  }
  const relative = normalize(decoded).replace(/^([/\\])+/, '');
  const file = join(root, relative || 'index.html');
  if (file !== root && !file.startsWith(root + sep)) return deny(res, 404, 'not found');
  const info = await stat(file).catch(() => undefined);
  // Unknown paths fall back to the app shell (client-side views).
  const target = info?.isFile() ? file : join(root, 'index.html');
  const targetInfo = info?.isFile() ? info : await stat(target).catch(() => undefined);
  if (!targetInfo) return deny(res, 500, `the renderer is not built (${root}): run npm run build`);
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream',
    'content-length': targetInfo.size,
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  createReadStream(target).pipe(res);
}

function deny(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(message);
}

function sameToken(given: string | null | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

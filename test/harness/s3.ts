import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  Agent,
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from './ports';

/** Credentials the local S3-protocol server accepts (it accepts any). */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const TEST_REGION = 'us-east-1';

export interface ProxyFaults {
  /** Added before each request is forwarded, in milliseconds. */
  latencyMs: number;
  /**
   * Fraction (0..1) of requests answered with 503 SlowDown instead of being forwarded. Spread
   * evenly, not at random (0.25 refuses every fourth request), so tests are repeatable.
   */
  slowDownRate: number;
  /**
   * Requests `matches` picks wait for `until` before they are forwarded, and `held` is told of
   * each: a test holds one step of a client's work (a push's ref) while it does something else.
   */
  hold?: {
    matches(method: string, url: string): boolean;
    until: Promise<void>;
    held(): void;
  };
}

/**
 * An S3-protocol server (s3rver) on loopback with a fresh bucket, behind an HTTP proxy that adds
 * latency per request, counts requests by method, and injects 503 SlowDown at a configurable rate.
 * Clients talk to `endpoint` (the proxy), path-style.
 */
export class S3Server {
  readonly counts = new Map<string, number>();
  /** Request body bytes received by method (partial bodies of requests cut off included). */
  readonly bytesIn = new Map<string, number>();
  /**
   * Requests by method and what they named: "HEAD chunk", "PUT chunk", "GET ref", "GET list"...
   * (a chunk is a key under objects/, a ref one under refs/).
   */
  readonly kinds = new Map<string, number>();
  /** When set, each request as "METHOD /path" (no query), in order; cleared by resetCounts. */
  recorded: string[] | undefined;
  /** The headers of the last request seen with each HTTP method. */
  readonly lastHeaders = new Map<string, IncomingMessage['headers']>();
  readonly faults: ProxyFaults = { latencyMs: 0, slowDownRate: 0 };
  private injected = 0;
  private seen = 0;

  private constructor(
    private readonly s3rver: S3rver,
    private readonly proxy: Server,
    private readonly dir: string,
    readonly bucket: string,
    readonly directEndpoint: string,
    readonly endpoint: string,
  ) {}

  static async start(options: { bucket?: string } = {}): Promise<S3Server> {
    const dir = await mkdtemp(join(tmpdir(), 'tv-s3-'));
    const bucket = options.bucket ?? `tv-test-${randomBytes(4).toString('hex')}`;
    const backendPort = await freePort();
    const s3rver = new S3rver({
      port: backendPort,
      address: '127.0.0.1',
      silent: true,
      directory: dir,
      configureBuckets: [{ name: bucket }],
    });
    await s3rver.run();
    const directEndpoint = `http://127.0.0.1:${backendPort}`;

    const ref: { server?: S3Server } = {};
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const proxy = createServer((req, res) => ref.server?.handle(req, res, backendPort, agent));
    const proxyPort = await new Promise<number>((resolve, reject) => {
      proxy.once('error', reject);
      proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as { port: number }).port));
    });
    const server = new S3Server(
      s3rver,
      proxy,
      dir,
      bucket,
      directEndpoint,
      `http://127.0.0.1:${proxyPort}`,
    );
    ref.server = server;
    return server;
  }

  /** The environment that points the AWS SDK (and so `tv`) at this server, the AWS way. */
  awsEnv(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: TEST_REGION,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    };
  }

  /** Requests seen by the proxy with this HTTP method (HEAD, PUT, GET, DELETE, POST). */
  count(method: string): number {
    return this.counts.get(method) ?? 0;
  }

  get totalRequests(): number {
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  /** How many requests were answered with an injected 503. */
  get injectedSlowDowns(): number {
    return this.injected;
  }

  resetCounts(): void {
    this.counts.clear();
    this.bytesIn.clear();
    this.kinds.clear();
    if (this.recorded) this.recorded = [];
    this.injected = 0;
  }

  async stop(): Promise<void> {
    this.proxy.closeAllConnections();
    await new Promise<void>((resolve) => this.proxy.close(() => resolve()));
    await this.s3rver.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    backendPort: number,
    agent: Agent,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    this.counts.set(method, this.count(method) + 1);
    const kind = `${method} ${requestKind(req.url ?? '')}`;
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
    this.recorded?.push(`${method} ${(req.url ?? '').split('?')[0]}`);
    this.lastHeaders.set(method, req.headers);
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));
    const hold = this.faults.hold;
    if (hold?.matches(method, req.url ?? '')) {
      hold.held();
      await hold.until;
    }
    this.seen++;
    const rate = this.faults.slowDownRate;
    if (rate > 0 && Math.floor(this.seen * rate) > Math.floor((this.seen - 1) * rate)) {
      this.injected++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
          '<Message>Please reduce your request rate.</Message></Error>',
      );
      return;
    }
    const upstream = request(
      { host: '127.0.0.1', port: backendPort, method, path: req.url, headers: req.headers, agent },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(upstream);
    req.on('data', (chunk: Buffer) =>
      this.bytesIn.set(method, (this.bytesIn.get(method) ?? 0) + chunk.length),
    );
  }
}

/** What a request names, from its path and query: chunk, ref, list or other. */
function requestKind(url: string): string {
  if (/[?&]list-type=/.test(url)) return 'list';
  const path = url.split('?')[0] ?? '';
  if (/\/objects\//.test(path)) return 'chunk';
  if (/\/refs\//.test(path)) return 'ref';
  return 'other';
}

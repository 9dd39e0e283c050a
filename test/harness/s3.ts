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
   * Requests by method and what they named or carried: "GET pack", "PUT index", "GET version",
   * "HEAD object", "GET list"... (see requestKind and objectKind).
   */
  readonly kinds = new Map<string, number>();
  /**
   * When set, each request as "METHOD /path kind" (no query; the kind as in `kinds`), in order;
   * cleared by resetCounts.
   */
  recorded: string[] | undefined;
  /** The headers of the last request seen with each HTTP method. */
  readonly lastHeaders = new Map<string, IncomingMessage['headers']>();
  readonly faults: ProxyFaults = { latencyMs: 0, slowDownRate: 0 };
  private injected = 0;
  private seen = 0;

  private constructor(
    private readonly s3rver: S3rver,
    private readonly proxy: Server,
    /** The server's folder of objects (removed by stop). */
    readonly dir: string,
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
    const path = (req.url ?? '').split('?')[0] ?? '';
    const named = requestKind(req.url ?? '');
    // A loose object is told apart by its bytes: the body a PUT sends, or a GET receives.
    const sniff = named === 'object' && (method === 'PUT' || method === 'GET') ? method : undefined;
    const recorded = this.recorded;
    const at = recorded ? recorded.push(`${method} ${path} ${named}`) - 1 : -1;
    let counted = false;
    const countAs = (kind: string) => {
      if (counted) return;
      counted = true;
      const name = `${method} ${kind}`;
      this.kinds.set(name, (this.kinds.get(name) ?? 0) + 1);
      if (recorded) recorded[at] = `${method} ${path} ${kind}`;
    };
    if (!sniff) countAs(named);
    res.once('finish', () => countAs(named));
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
        if (sniff === 'GET' && (upstreamRes.statusCode ?? 0) < 300)
          upstreamRes.once('data', (chunk: Buffer) => countAs(objectKind(chunk)));
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(upstream);
    if (sniff === 'PUT') req.once('data', (chunk: Buffer) => countAs(objectKind(chunk)));
    req.on('data', (chunk: Buffer) =>
      this.bytesIn.set(method, (this.bytesIn.get(method) ?? 0) + chunk.length),
    );
  }
}

/**
 * What a request names, from its path and query (docs/format.md, "Layout"): list, pack (chunk
 * data, `data/`), index, object (a loose object, `objects/`), ref, tag, config, bucket (the
 * bucket itself) or other.
 */
function requestKind(url: string): string {
  if (/[?&]list-type=/.test(url)) return 'list';
  const path = url.split('?')[0] ?? '';
  if (/\/data\/[0-9a-f]{2}\//.test(path)) return 'pack';
  if (/\/index\/[^/]+$/.test(path)) return 'index';
  if (/\/objects\//.test(path)) return 'object';
  if (/\/refs\//.test(path)) return 'ref';
  if (/\/tags\//.test(path)) return 'tag';
  if (/\/config$/.test(path)) return 'config';
  if (/^\/[^/]+\/?$/.test(path)) return 'bucket';
  return 'other';
}

/**
 * What a loose object is, from its first bytes: a file manifest (`TVMF`), a version record (JSON
 * of kind "version"), or else a chunk (chunks are loose objects in format 1).
 */
function objectKind(start: Buffer): string {
  if (start.subarray(0, 4).toString('latin1') === 'TVMF') return 'manifest';
  if (start[0] === 0x7b && /"kind"\s*:\s*"version"/.test(start.subarray(0, 256).toString('utf8')))
    return 'version';
  return 'chunk';
}

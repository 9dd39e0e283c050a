import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** Credentials the local S3-protocol server accepts (it accepts any). */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const TEST_REGION = 'us-east-1';

export interface ServerFaults {
  /** Added before each request is answered, in milliseconds. */
  latencyMs: number;
  /**
   * Fraction (0..1) of requests answered with 503 SlowDown instead of being served. Spread
   * evenly, not at random (0.25 refuses every fourth request), so tests are repeatable.
   */
  slowDownRate: number;
  /**
   * When set, request bodies arrive no faster than this many bytes a second, all requests
   * sharing it (a workstation's uplink): a body of n bytes is served once the link has carried
   * it after the bodies before it.
   */
  uplinkBytesPerSecond?: number;
  /**
   * Requests `matches` picks wait for `until` before they are served, and `held` is told of
   * each: a test holds one step of a client's work (a push's ref) while it does something else.
   */
  hold?: {
    matches(method: string, url: string): boolean;
    until: Promise<void>;
    held(): void;
  };
}

/**
 * An S3-protocol server (s3rver) on loopback with a fresh bucket. Its own HTTP server sees each
 * request first: it adds latency, counts requests by method and kind, and injects 503 SlowDown at
 * a configurable rate, then hands the request to s3rver in the same process. (A proxy in front
 * parsed and copied every byte a second time: CPU a real S3 never takes from the client's cores.)
 * Clients talk to `endpoint`, path-style.
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
  readonly faults: ServerFaults = { latencyMs: 0, slowDownRate: 0 };
  private injected = 0;
  private seen = 0;

  private constructor(
    private readonly http: Server,
    /** The server's folder of objects (removed by stop). */
    readonly dir: string,
    readonly bucket: string,
    readonly endpoint: string,
  ) {}

  static async start(options: { bucket?: string } = {}): Promise<S3Server> {
    const dir = await mkdtemp(join(tmpdir(), 'tv-s3-'));
    const bucket = options.bucket ?? `tv-test-${randomBytes(4).toString('hex')}`;
    const s3rver = new S3rver({
      silent: true,
      directory: dir,
      configureBuckets: [{ name: bucket }],
    });
    // What s3rver's run() does before it listens; its request handler then runs behind ours.
    await s3rver.configureBuckets();
    const answer = s3rver.callback();
    const ref: { server?: S3Server } = {};
    const http = createServer((req, res) => void ref.server?.handle(req, res, answer));
    const port = await new Promise<number>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => resolve((http.address() as { port: number }).port));
    });
    const server = new S3Server(http, dir, bucket, `http://127.0.0.1:${port}`);
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

  /** Requests seen with this HTTP method (HEAD, PUT, GET, DELETE, POST). */
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
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    answer: (req: IncomingMessage, res: ServerResponse) => unknown,
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
    // A body is read whole before s3rver sees it: a client that dies mid-request (kill -9)
    // leaves no object behind, as on S3 (s3rver would store the bytes that came as the object).
    let request = req;
    if (method === 'PUT' || method === 'POST') {
      const body = await this.readBody(req, method, sniff === 'PUT' ? countAs : undefined);
      if (!body) return;
      await this.carry(body.reduce((n, b) => n + b.length, 0));
      request = replay(req, body);
    } else if (req.destroyed) return;
    if (sniff === 'GET') {
      const write = res.write.bind(res);
      const end = res.end.bind(res);
      let firstOut = true;
      const sniffOut = (chunk: unknown) => {
        if (!firstOut || !Buffer.isBuffer(chunk) || chunk.length === 0) return;
        firstOut = false;
        if (res.statusCode < 300) countAs(objectKind(chunk));
      };
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        sniffOut(chunk);
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof res.write;
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        sniffOut(chunk);
        return (end as (...a: unknown[]) => ServerResponse)(chunk, ...rest);
      }) as typeof res.end;
    }
    answer(request, res);
  }

  /** When the uplink (faults.uplinkBytesPerSecond) is next free, performance.now(). */
  private uplinkFreeAt = 0;

  /** Waits until the uplink has carried `bytes` more, after what it carries already. */
  private async carry(bytes: number): Promise<void> {
    const rate = this.faults.uplinkBytesPerSecond;
    if (!rate || bytes === 0) return;
    const now = performance.now();
    this.uplinkFreeAt = Math.max(now, this.uplinkFreeAt) + (bytes / rate) * 1000;
    const wait = this.uplinkFreeAt - now;
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
  }

  /** The request's body, counted as it comes; undefined when the client went away first. */
  private readBody(
    req: IncomingMessage,
    method: string,
    sniff: ((kind: string) => void) | undefined,
  ): Promise<Buffer[] | undefined> {
    return new Promise((resolve) => {
      const body: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        if (body.length === 0) sniff?.(objectKind(chunk));
        body.push(chunk);
        this.bytesIn.set(method, (this.bytesIn.get(method) ?? 0) + chunk.length);
      });
      req.once('end', () => resolve(body));
      req.once('close', () => resolve(req.complete ? body : undefined));
    });
  }
}

/** A request like `req` whose body is `body`, read already (for s3rver's handler). */
function replay(req: IncomingMessage, body: readonly Buffer[]): IncomingMessage {
  const copy = new IncomingMessage(req.socket);
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  for (const chunk of body) copy.push(chunk);
  copy.push(null);
  copy.complete = true;
  return copy;
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

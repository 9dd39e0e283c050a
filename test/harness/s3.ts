import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from './ports';

/** Credentials the local S3-protocol server accepts (it accepts any). */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const TEST_REGION = 'us-east-1';

export interface ServerFaults {
  /** Added before each request is forwarded, in milliseconds. */
  latencyMs: number;
  /**
   * Fraction (0..1) of requests answered with 503 SlowDown instead of being forwarded. Spread
   * evenly, not at random (0.25 refuses every fourth request), so tests are repeatable.
   */
  slowDownRate: number;
}

/**
 * An S3-protocol server (s3rver) on loopback with a fresh bucket. Before s3rver handles a request,
 * the harness counts it by method, waits the configured latency, and answers 503 SlowDown at the
 * configured rate. These run inside the server, not in a proxy in front of it: a proxy would
 * parse and forward every request once more, on the same cores as the client being measured,
 * which a remote S3 does not. Clients talk to `endpoint`, path-style.
 */
export class S3Server {
  readonly counts = new Map<string, number>();
  readonly faults: ServerFaults = { latencyMs: 0, slowDownRate: 0 };
  private injected = 0;
  private seen = 0;

  private constructor(
    private readonly s3rver: S3rver,
    private readonly dir: string,
    readonly bucket: string,
    readonly endpoint: string,
  ) {}

  static async start(options: { bucket?: string } = {}): Promise<S3Server> {
    const dir = await mkdtemp(join(tmpdir(), 'tv-s3-'));
    const bucket = options.bucket ?? `tv-test-${randomBytes(4).toString('hex')}`;
    const port = await freePort();
    const s3rver = new S3rver({
      port,
      address: '127.0.0.1',
      silent: true,
      directory: dir,
      configureBuckets: [{ name: bucket }],
    });
    const server = new S3Server(s3rver, dir, bucket, `http://127.0.0.1:${port}`);
    // First in the chain, so it sees every request before s3rver does.
    s3rver.middleware.unshift(async (ctx, next) => {
      if (await server.intercept(ctx.method)) {
        ctx.status = 503;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
          '<Message>Please reduce your request rate.</Message></Error>';
        return;
      }
      await next();
    });
    await s3rver.run();
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

  /** Requests the server was sent with this HTTP method (HEAD, PUT, GET, DELETE, POST). */
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
    this.injected = 0;
  }

  async stop(): Promise<void> {
    await this.s3rver.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Counts the request and waits the latency; true when it is to be refused with SlowDown. */
  private async intercept(method: string): Promise<boolean> {
    this.counts.set(method, this.count(method) + 1);
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));
    this.seen++;
    const rate = this.faults.slowDownRate;
    if (rate > 0 && Math.floor(this.seen * rate) > Math.floor((this.seen - 1) * rate)) {
      this.injected++;
      return true;
    }
    return false;
  }
}

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mapLimit, Semaphore } from '../concurrency';
import { countRequest } from './requests';
import { S3_DEFAULTS, type S3Options } from './s3-options';
import { S3RetryStrategy } from './s3-retry';
import { S3BlobWriter, type S3Uploads } from './s3-writer';

import {
  ObjectNotFoundError,
  StoreError,
  validateKey,
  type BlobStore,
  type BlobWriter,
  type ListEntry,
  type ListOptions,
  type PutOptions,
  type RangeSink,
  type WriterOptions,
  type RetryStats,
} from './store';

export type { S3Options } from './s3-options';

export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket ("" or "team/models"), without leading or trailing slash. */
  prefix: string;
}

/** Free upload buffers kept for the next writers, per size. */
const SPARE_BUFFERS = 8;

/** Parses "s3://bucket/some/prefix". */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!match) {
    throw new StoreError(
      `cannot read the S3 location "${url}": expected s3://bucket or s3://bucket/prefix`,
      'BAD_LOCATION',
    );
  }
  return { bucket: match[1] as string, prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/**
 * The endpoint the SDK would use, read the way it reads it (an empty variable is unset), checked
 * to be a URL: the SDK's own words for "127.0.0.1:9000" are "TypeError: Invalid URL".
 */
export function configuredEndpoint(explicit?: string): string | undefined {
  const [source, endpoint] = (
    [
      ['the endpoint in Settings', explicit],
      ['AWS_ENDPOINT_URL_S3', process.env['AWS_ENDPOINT_URL_S3']],
      ['AWS_ENDPOINT_URL', process.env['AWS_ENDPOINT_URL']],
    ] as const
  ).find(([, value]) => value) ?? [undefined, undefined];
  if (endpoint && !/^https?:\/\/[^/]/i.test(endpoint))
    throw new StoreError(
      `the S3 endpoint "${endpoint}" (${source}) is not a URL: write it with its scheme, as http://${endpoint} or https://${endpoint}`,
      'BAD_ENDPOINT',
    );
  return endpoint;
}

/** IP and localhost endpoints cannot carry the bucket in the host name: path-style for them. */
export function needsPathStyle(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
    return isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost');
  } catch {
    return false;
  }
}

/**
 * A Store in an S3 bucket (or any S3-protocol server): HEAD, PUT, GET, DELETE, ListObjectsV2 on
 * keep-alive sockets, bounded concurrency, the SDK's retries for 5xx and SlowDown, and
 * ChecksumSHA256 on uploads whose sha256 is known, so the bucket verifies what it stores.
 */
export class S3Store implements BlobStore {
  readonly location: string;
  readonly remote = true;
  private readonly client: S3Client;
  private readonly limit: Semaphore;
  private readonly endpoint: string | undefined;
  private readonly partBytes: number;
  private readonly spare = new Map<number, Buffer[]>();
  /** The server's clock minus ours, from the Date header of its last answer. */
  private clockOffsetMs = 0;
  /** The last time now() gave. */
  private lastNow = 0;
  private readonly retry: S3RetryStrategy;
  private readonly timeouts: { connectMs: number; idleMs: number; retryForMs: number };
  private readonly region: string | undefined;

  constructor(
    private readonly where: S3Location,
    options: S3Options = {},
  ) {
    this.location = `s3://${where.bucket}${where.prefix ? `/${where.prefix}` : ''}`;
    this.endpoint = configuredEndpoint(options.endpoint);
    const concurrency = options.concurrency ?? 64;
    const agentOptions = { keepAlive: true, maxSockets: concurrency + 16 };
    const region = options.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'];
    const { maxAttempts, retryForMs, connectTimeoutMs, idleTimeoutMs } = {
      ...S3_DEFAULTS,
      ...options,
    };
    this.timeouts = { connectMs: connectTimeoutMs, idleMs: idleTimeoutMs, retryForMs };
    this.region = region;
    this.retry = new S3RetryStrategy({ maxAttempts, retryForMs });
    this.client = new S3Client({
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
      region: region ?? (this.endpoint ? 'us-east-1' : undefined),
      forcePathStyle: needsPathStyle(this.endpoint),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts,
      retryStrategy: this.retry,
      // The middleware stack is resolved once per kind of command, not on every request: this
      // store adds its own steps here, before any request, and never changes them afterwards.
      cacheMiddleware: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
        connectionTimeout: connectTimeoutMs,
        // Silence on a connection fails the request (a TimeoutError the retries take); a body
        // that keeps moving, however slowly, does not.
        socketTimeout: idleTimeoutMs,
      }),
    });
    this.limit = new Semaphore(concurrency);
    this.partBytes = Math.max(5 << 20, options.partBytes ?? 96 << 20);
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        this.readClock((result.response as { headers?: Record<string, string> }).headers);
        return result;
      },
      { step: 'deserialize', name: 'serverClock' },
    );
    // An upload whose sha256 is known signs that digest as its payload hash: the SDK would
    // otherwise hash every body again to sign it (S3 checks the body against both).
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const checksum = (args.input as { ChecksumSHA256?: unknown }).ChecksumSHA256;
        const request = args.request as { headers?: Record<string, string> } | undefined;
        if (typeof checksum === 'string' && request?.headers) {
          request.headers['x-amz-content-sha256'] = Buffer.from(checksum, 'base64').toString('hex');
        }
        return next(args);
      },
      { step: 'build', name: 'payloadHashFromChecksum' },
    );
  }

  private key(key: string): string {
    validateKey(key);
    return this.where.prefix ? `${this.where.prefix}/${key}` : key;
  }

  /** Checks the bucket exists and the credentials are accepted: one clear error otherwise. */
  async check(): Promise<void> {
    try {
      await this.limit.with(() =>
        this.client.send(new HeadBucketCommand({ Bucket: this.where.bucket })),
      );
    } catch (err) {
      throw this.describe(err, 'open', undefined);
    }
  }

  async has(key: string): Promise<boolean> {
    const Key = this.key(key);
    countRequest('head');
    try {
      await this.limit.with(() =>
        this.client.send(new HeadObjectCommand({ Bucket: this.where.bucket, Key })),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.describe(err, 'check', key);
    }
  }

  hasMany(keys: readonly string[]): Promise<boolean[]> {
    return mapLimit(keys, 256, (key) => this.has(key));
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const Key = this.key(key);
    countRequest('put', data.length);
    try {
      await this.limit.with(() =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.where.bucket,
            Key,
            Body: data,
            ContentLength: data.length,
            ...(options.sha256
              ? { ChecksumSHA256: Buffer.from(options.sha256, 'hex').toString('base64') }
              : {}),
          }),
        ),
      );
    } catch (err) {
      throw this.describe(err, 'upload', key);
    }
  }

  async get(key: string): Promise<Readable> {
    const Key = this.key(key);
    countRequest('get');
    try {
      const response = await this.limit.with(() =>
        this.client.send(new GetObjectCommand({ Bucket: this.where.bucket, Key })),
      );
      return response.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key, this.location);
      throw this.describe(err, 'download', key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    await this.readRange(key, offset, length, (piece, at) => bytes.set(piece, at));
    return bytes;
  }

  async readRange(key: string, offset: number, length: number, sink: RangeSink): Promise<void> {
    if (length === 0) return;
    const Key = this.key(key);
    countRequest('get', 0, length);
    const short = (got: number) =>
      new StoreError(
        `cannot download bytes ${offset}-${offset + length - 1} of ${key} in ${this.location}: ${got} bytes came`,
        'SHORT_READ',
      );
    try {
      await this.limit.with(async () => {
        const response = await this.client.send(
          new GetObjectCommand({
            Bucket: this.where.bucket,
            Key,
            Range: `bytes=${offset}-${offset + length - 1}`,
          }),
        );
        let at = 0;
        for await (const part of response.Body as Readable) {
          const piece = part as Buffer;
          // A server that ignored the range sends more than asked: refused, never used.
          if (at + piece.length > length) throw short(at + piece.length);
          sink(piece, at);
          at += piece.length;
        }
        if (at !== length) throw short(at);
      });
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (isNotFound(err)) throw new ObjectNotFoundError(key, this.location);
      throw this.describe(err, 'download', key);
    }
  }

  createWriter(key: string, options: WriterOptions = {}): BlobWriter {
    const Key = this.key(key);
    const Bucket = this.where.bucket;
    const checksum = (sha256: string) => Buffer.from(sha256, 'hex').toString('base64');
    const request = async <T>(kind: 'put' | 'post', bytes: number, send: () => Promise<T>) => {
      countRequest(kind, bytes);
      try {
        return await this.limit.with(send);
      } catch (err) {
        throw this.describe(err, 'upload', key);
      }
    };
    const uploads: S3Uploads = {
      putWhole: async (data, sha256) => {
        await request('put', data.length, () =>
          this.client.send(
            new PutObjectCommand({
              Bucket,
              Key,
              Body: data,
              ContentLength: data.length,
              ChecksumSHA256: checksum(sha256),
            }),
          ),
        );
      },
      startMultipart: async () => {
        const started = await request('post', 0, () =>
          this.client.send(
            new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'SHA256' }),
          ),
        );
        return started.UploadId as string;
      },
      uploadPart: async (UploadId, PartNumber, data, sha256) => {
        const sent = await request('put', data.length, () =>
          this.client.send(
            new UploadPartCommand({
              Bucket,
              Key,
              UploadId,
              PartNumber,
              Body: data,
              ContentLength: data.length,
              ChecksumSHA256: checksum(sha256),
            }),
          ),
        );
        return sent.ETag as string;
      },
      completeMultipart: async (UploadId, parts) => {
        await request('post', 0, () =>
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key,
              UploadId,
              MultipartUpload: {
                Parts: parts.map((p) => ({
                  PartNumber: p.part,
                  ETag: p.etag,
                  ChecksumSHA256: checksum(p.sha256),
                })),
              },
            }),
          ),
        );
      },
      abortMultipart: async (UploadId) => {
        countRequest('delete');
        await this.limit.with(() =>
          this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
        );
      },
      takeBuffer: (bytes) => this.spare.get(bytes)?.pop() ?? Buffer.allocUnsafeSlow(bytes),
      giveBack: (buffer) => {
        // Pack-sized buffers come back for the next pack; small ones are not worth keeping.
        if (buffer.length < 1 << 20) return;
        const free = this.spare.get(buffer.length) ?? [];
        if (free.length < SPARE_BUFFERS) free.push(buffer);
        this.spare.set(buffer.length, free);
      },
    };
    // A blob expected to fit in a part goes up in one PUT, from one buffer sized for it.
    const expected = options.expectedBytes ?? 64 << 10;
    return new S3BlobWriter(uploads, expected, this.partBytes);
  }

  /**
   * Never goes back, and never gives the same time twice: the offset moves by up to a second as
   * Date headers cross a second, and index objects this client writes one after another (gc's,
   * the last carrying its condemned set) must sort in the order they were written.
   */
  now(): number {
    this.lastNow = Math.max(Date.now() + this.clockOffsetMs, this.lastNow + 1);
    return this.lastNow;
  }

  /** Keeps the server's clock from a response's Date header (a second's resolution). */
  private readClock(headers: Record<string, string> | undefined): void {
    const date = headers?.['date'] ?? headers?.['Date'];
    if (!date) return;
    const server = Date.parse(date);
    // The header truncates to the second: the middle of that second is the best guess.
    if (Number.isFinite(server)) this.clockOffsetMs = server + 500 - Date.now();
  }

  async delete(key: string): Promise<void> {
    const Key = this.key(key);
    countRequest('delete');
    try {
      await this.limit.with(() =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.where.bucket, Key })),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.describe(err, 'delete', key);
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const full = this.where.prefix ? `${this.where.prefix}/${prefix}` : prefix;
    const strip = this.where.prefix ? this.where.prefix.length + 1 : 0;
    const StartAfter =
      options.startAfter === undefined
        ? undefined
        : this.where.prefix
          ? `${this.where.prefix}/${options.startAfter}`
          : options.startAfter;
    let ContinuationToken: string | undefined;
    do {
      let page;
      countRequest('list');
      try {
        page = await this.limit.with(() =>
          this.client.send(
            new ListObjectsV2Command({
              Bucket: this.where.bucket,
              Prefix: full,
              ContinuationToken,
              ...(StartAfter && !ContinuationToken ? { StartAfter } : {}),
            }),
          ),
        );
      } catch (err) {
        throw this.describe(err, 'list', prefix);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key.slice(strip),
          size: object.Size ?? 0,
          ...(object.LastModified ? { modified: object.LastModified } : {}),
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async flush(): Promise<void> {
    // S3 acknowledges a PUT only once the object is durably stored.
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  retries(): RetryStats {
    return { ...this.retry.stats };
  }

  /** One clear sentence for an S3 failure: what failed, on which object, and what to do. */
  private describe(err: unknown, action: string, key: string | undefined): StoreError {
    const e = err as {
      name?: string;
      code?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number; attempts?: number; totalRetryDelay?: number };
    };
    const status = e.$metadata?.httpStatusCode;
    const attempts = e.$metadata?.attempts ?? 1;
    const what = key ? `${action} ${key} in ${this.location}` : `${action} ${this.location}`;
    const at = this.endpoint ? ` at ${this.endpoint}` : '';
    const name = e.name ?? e.code ?? 'Error';
    if (name === 'NoSuchBucket' || (action === 'open' && status === 404)) {
      return new StoreError(
        `cannot ${what}: the bucket "${this.where.bucket}" does not exist${at}: create it or check the repository URL`,
        'NO_BUCKET',
        { cause: err },
      );
    }
    if (
      [
        'InvalidAccessKeyId',
        'SignatureDoesNotMatch',
        'AccessDenied',
        'InvalidToken',
        'ExpiredToken',
      ].includes(name) ||
      status === 403
    ) {
      return new StoreError(
        `cannot ${what}: S3 refused the credentials (${name === 'Error' || name === 'Unknown' || name === '403' ? `HTTP ${status}` : name}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE`,
        'ACCESS_DENIED',
        { cause: err },
      );
    }
    if (name === 'CredentialsProviderError') {
      return new StoreError(
        `cannot ${what}: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`,
        'NO_CREDENTIALS',
        { cause: err },
      );
    }
    if (/Region is missing/i.test(e.message ?? '')) {
      return new StoreError(`cannot ${what}: no AWS region: set AWS_REGION`, 'NO_REGION', {
        cause: err,
      });
    }
    const server = this.endpoint
      ? `S3 at ${this.endpoint}`
      : `S3 in ${this.region ?? 'its region'}`;
    const checkServer = this.endpoint
      ? `check that ${this.endpoint} (AWS_ENDPOINT_URL_S3, or the endpoint in Settings) is an S3 server that is up, and the network to it`
      : 'check the network (and HTTPS_PROXY, if a proxy is in the way) and the AWS service health';
    const tries = attempts > 1 ? ` (${attempts} tries)` : '';
    if (name === 'TimeoutError') {
      const silent = /did not establish a connection/.test(e.message ?? '')
        ? `did not accept a connection within ${seconds(this.timeouts.connectMs)}`
        : `accepted the connection but did not answer within ${seconds(this.timeouts.idleMs)}`;
      return new StoreError(
        `cannot ${what}: ${server} ${silent}${tries}: ${checkServer}`,
        'TIMEOUT',
        {
          cause: err,
        },
      );
    }
    if (isThrottling(name, status)) {
      const waited = seconds(e.$metadata?.totalRetryDelay ?? 0);
      return new StoreError(
        `cannot ${what}: ${server} kept asking to slow down (${name === 'Error' || name === 'Unknown' ? `HTTP ${status}` : name}) through ${attempts} tries and ${waited} of backoff, until the retry time (${seconds(this.timeouts.retryForMs)}) was up: try again later, or allow more time with --retry-for`,
        'THROTTLED',
        { cause: err },
      );
    }
    const network = [
      'ECONNREFUSED',
      'ENOTFOUND',
      'ETIMEDOUT',
      'ECONNRESET',
      'EHOSTUNREACH',
      'EAI_AGAIN',
    ];
    if (network.includes(e.code ?? '') || network.includes(name)) {
      return new StoreError(
        `cannot ${what}: cannot reach ${server} (${e.code ?? name})${tries}: ${checkServer}`,
        'UNREACHABLE',
        { cause: err },
      );
    }
    return new StoreError(
      `cannot ${what}: ${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? ''}`.trim(),
      name,
      { cause: err },
    );
  }
}

/** S3's ways of saying "slow down" (the SDK's throttling codes, 429, and 503 without a code). */
function isThrottling(name: string, status: number | undefined): boolean {
  return (
    [
      'SlowDown',
      'Throttling',
      'ThrottlingException',
      'RequestLimitExceeded',
      'TooManyRequestsException',
    ].includes(name) ||
    status === 429 ||
    (status === 503 && (name === 'Error' || name === 'Unknown' || name === '503'))
  );
}

/** Milliseconds as a person reads them: "800 ms", "10 s", "10 min". */
function seconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} min`;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NotFound' ||
    e.name === 'NoSuchKey' ||
    (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket')
  );
}

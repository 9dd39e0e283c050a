import type { S3ClientConfig } from '@aws-sdk/client-s3';

export interface S3Options {
  /** Overrides AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (an S3-compatible server). */
  endpoint?: string;
  /** Overrides AWS_REGION / AWS_DEFAULT_REGION. */
  region?: string;
  /** Explicit credentials; otherwise the SDK's default chain (env, profile, SSO, instance role). */
  credentials?: S3ClientConfig['credentials'];
  /** Requests in flight at once (default 64). */
  concurrency?: number;
  /** Tries per request for failures that may pass: 5xx, timeouts, resets (default 3). */
  maxAttempts?: number;
  /**
   * How long a request keeps being retried while S3 throttles it, 503 SlowDown (default 10
   * minutes; `--retry-for`). Also bounds the other retries.
   */
  retryForMs?: number;
  /** Opening a connection (TCP and TLS) may take this long (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * A request whose connection stays silent this long is abandoned and retried (default 10 s):
   * an endpoint that accepts connections and never answers costs tries x this, not forever.
   */
  idleTimeoutMs?: number;
}

/** Defaults of S3Options, for messages and settings. */
export const S3_DEFAULTS = {
  maxAttempts: 3,
  retryForMs: 10 * 60_000,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
} as const;

import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestCounts } from '../../../shared/types';

export type RequestKind = keyof RequestCounts;

/**
 * What one command (a push, a restore) asked of the storage backend: requests by kind and the
 * bytes sent and received. The blob stores count every request into the meter of the operation
 * it serves (an AsyncLocalStorage context), so two pushes at once in the app each count their own.
 */
export class RequestMeter {
  readonly requests: RequestCounts = emptyCounts();
  uploadedBytes = 0;
  downloadedBytes = 0;

  add(kind: RequestKind, uploaded: number, downloaded: number): void {
    this.requests[kind]++;
    this.uploadedBytes += uploaded;
    this.downloadedBytes += downloaded;
  }

  get total(): number {
    return Object.values(this.requests).reduce((a, b) => a + b, 0);
  }
}

const current = new AsyncLocalStorage<RequestMeter>();

/** Runs `fn` with every backend request it causes (background ones included) counted in `meter`. */
export function metered<T>(meter: RequestMeter, fn: () => Promise<T>): Promise<T> {
  return current.run(meter, fn);
}

/** Called by a blob store for each request it makes. */
export function countRequest(kind: RequestKind, uploaded = 0, downloaded = 0): void {
  current.getStore()?.add(kind, uploaded, downloaded);
}

export function emptyCounts(): RequestCounts {
  return { put: 0, post: 0, list: 0, get: 0, head: 0, delete: 0 };
}

/**
 * S3 Standard list prices per 1,000 requests (us-east-1): PUT, COPY, POST and LIST $0.005; GET
 * and every other request $0.0004; DELETE is free. An estimate: regions, storage classes and
 * data transfer differ.
 */
const USD_PER_1000: RequestCounts = {
  put: 0.005,
  post: 0.005,
  list: 0.005,
  get: 0.0004,
  head: 0.0004,
  delete: 0,
};

export function estimatedRequestCostUsd(counts: RequestCounts): number {
  let usd = 0;
  for (const kind of Object.keys(USD_PER_1000) as RequestKind[])
    usd += (counts[kind] * USD_PER_1000[kind]) / 1000;
  return Math.round(usd * 1e7) / 1e7;
}

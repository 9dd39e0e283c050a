import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushProgress } from '../../shared/types';
import { Service } from '../../electron/engine/service';
import { openBackend, packsInFlight } from '../../electron/engine/storage/compose';
import { BlackholeServer } from '../harness/redis';
import { S3Server, TEST_CREDENTIALS, TEST_REGION } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { s3Options, startServers, type TestServers } from './stores';
import { tv, tvOnTerminal } from './tv';

let servers: TestServers;
let s3: S3Server;
let work: TestServers['work'];
let hung: BlackholeServer;
beforeAll(async () => {
  servers = await startServers('tv-s3-faults-');
  ({ s3, work } = servers);
  hung = await BlackholeServer.start();
});
afterAll(async () => {
  await hung?.close();
  await servers?.stop();
});

let n = 0;
async function folder(bytes: number): Promise<string> {
  const dir = join(work.path, `src-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'weights.bin'), seededBytes(100 + n, bytes));
  return dir;
}

describe('an S3 endpoint that accepts connections and never answers', () => {
  it('fails a command with the endpoint and what to check, after its tries, instead of hanging', async () => {
    const started = performance.now();
    const error = await openBackend(`s3://${s3.bucket}/hung`, {
      ...s3Options(s3),
      endpoint: hung.httpUrl,
      idleTimeoutMs: 500,
      maxAttempts: 2,
    }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `cannot open s3://${s3.bucket}/hung: S3 at ${hung.httpUrl} accepted the connection but did not answer within 500 ms (2 tries): check that ${hung.httpUrl} (AWS_ENDPOINT_URL_S3, or the endpoint in Settings) is an S3 server that is up, and the network to it`,
    );
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('tv models says so with its defaults (10 s of silence, 3 tries)', async () => {
    const run = await tv(['models'], {
      ...s3.awsEnv(),
      AWS_ENDPOINT_URL_S3: hung.httpUrl,
      TV_REPO: `s3://${s3.bucket}/hung`,
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(
      /^tv: cannot open s3:\/\/[\w-]+\/hung: S3 at http:\/\/127\.0\.0\.1:\d+ accepted the connection but did not answer within 10 s \(3 tries\): check that/,
    );
  });

  it("the app's connection test answers within seconds", async () => {
    const service = new Service({
      repository: join(work.path, 'x'),
      redisUrl: undefined,
      mode: 'desktop',
    });
    try {
      const started = performance.now();
      const result = await service.testConnection('s3', {
        repository: `s3://${s3.bucket}/x`,
        s3Endpoint: hung.httpUrl,
        s3Region: TEST_REGION,
        s3AccessKeyId: TEST_CREDENTIALS.accessKeyId,
        s3SecretAccessKey: TEST_CREDENTIALS.secretAccessKey,
        redisUrl: '',
        uploadConcurrency: 8,
      });
      expect(result).toMatchObject({
        ok: false,
        message: expect.stringMatching(
          /accepted the connection but did not answer within 3 s: check that/,
        ),
      });
      expect(performance.now() - started).toBeLessThan(8_000);
    } finally {
      await service.close();
    }
  });
});

describe('an S3 endpoint that stops answering during a push', () => {
  it('fails the push with the upload that failed, and starts no more work once it has', async () => {
    const src = await folder(3_000_000);
    const service = new Service({
      repository: `s3://${s3.bucket}/stops-answering`,
      redisUrl: undefined,
      s3: s3Options(s3, { idleTimeoutMs: 500, maxAttempts: 2 }),
      mode: 'cli',
      workers: 2,
    });
    await service.init({ packSize: 64 * 1024 }); // a pack upload early in the push
    // From the first pack upload on, the server answers nothing more (as a hung server).
    let hung = false;
    let packUploads = 0;
    let release = () => {};
    s3.faults.hold = {
      matches: (method, url) => {
        const pack = method === 'PUT' && url.includes('/data/');
        if (pack) packUploads++;
        return (hung ||= pack);
      },
      until: new Promise<void>((resolve) => (release = resolve)),
      held: () => {},
    };
    try {
      const error = await service.push({ model: 'm', paths: [src] }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(
        /^cannot upload data\/[0-9a-f]{2}\/[0-9a-f]+ in s3:\/\/[\w-]+\/stops-answering: S3 at http:\/\/127\.0\.0\.1:\d+ accepted the connection but did not answer within 500 ms \(2 tries\)/,
      );
      // The packs in flight when the server stopped answering, each tried twice, and no pack
      // opened after one had failed (each waiting out its own tries): a push on a store that
      // stopped answering fails after one round of tries, not a round per pack.
      expect(packUploads).toBeLessThanOrEqual(packsInFlight(64 * 1024, true) * 2);
    } finally {
      delete s3.faults.hold;
      release();
      await service.close();
    }
  });
});

describe('S3 throttling (503 SlowDown)', () => {
  it('at 20%, a push on a terminal completes and its progress says S3 is throttling', async () => {
    const src = await folder(6_000_000);
    const env = { ...s3.awsEnv(), TV_REPO: `s3://${s3.bucket}/throttled-20` };
    // The smallest packs: a request per 64 KiB, as many as a blob per chunk would make.
    expect((await tv(['init', '--pack-size', '64KiB'], env)).code).toBe(0);
    s3.faults.slowDownRate = 0.2;
    try {
      const run = await tvOnTerminal(['push', 'slow', src], env);
      expect(run.code).toBe(0);
      expect(run.output).toContain('S3 is throttling, retrying');
      expect(run.output).toMatch(/slow v1 \([0-9a-f]{12}\)/);
    } finally {
      s3.faults.slowDownRate = 0;
    }
  });

  it('at 50%, a push completes: adaptive retries for as long as the retry time allows', async () => {
    const src = await folder(2_000_000);
    const service = new Service({
      repository: `s3://${s3.bucket}/throttled-50`,
      redisUrl: undefined,
      s3: s3Options(s3),
      mode: 'cli',
      workers: 2,
    });
    const seen: PushProgress[] = [];
    await service.init({ packSize: 64 * 1024 }); // a request per 64 KiB
    s3.faults.slowDownRate = 0.5;
    try {
      s3.resetCounts();
      const pushed = await service.push({
        model: 'm',
        paths: [src],
        onProgress: (p) => seen.push(p),
      });
      expect(pushed.version).toBe('v1');
      expect(s3.injectedSlowDowns).toBeGreaterThan(20);
      expect(seen.some((p) => p.throttled)).toBe(true);
      expect(seen.at(-1)?.throttledRetries).toBeGreaterThan(20);
      s3.faults.slowDownRate = 0;
      expect((await service.verify({ full: true })).ok).toBe(true);
    } finally {
      s3.faults.slowDownRate = 0;
      await service.close();
    }
  });

  it('--retry-for bounds the retries, and the error says what to do', async () => {
    const src = await folder(200_000);
    s3.faults.slowDownRate = 1;
    try {
      const started = performance.now();
      const run = await tv(['--retry-for', '2s', 'push', 'never', src], {
        ...s3.awsEnv(),
        TV_REPO: `s3://${s3.bucket}/throttled-100`,
      });
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toMatch(
        /^tv: cannot open s3:\/\/[\w-]+\/throttled-100: S3 at http:\/\/127\.0\.0\.1:\d+ kept asking to slow down \((SlowDown|HTTP 503)\) through \d+ tries and [\d.]+ (ms|s) of backoff, until the retry time \(2 s\) was up: try again later, or allow more time with --retry-for$/,
      );
      expect(performance.now() - started).toBeLessThan(15_000);
    } finally {
      s3.faults.slowDownRate = 0;
    }
  });
});

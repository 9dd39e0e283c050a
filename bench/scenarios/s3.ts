import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { DEFAULT_PROFILE, MiB } from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { mapLimit } from '../../electron/engine/concurrency';
import { createHasher } from '../../electron/engine/hashing';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import { TEST_CREDENTIALS, TEST_REGION } from '../../test/harness/s3';
import { versionPair } from '../data';
import { round, type BenchContext, type ScenarioResult } from '../report';
import { settle } from '../run';
import { RedisServer, S3Child, s3Options, s3Service } from '../s3-fixture';

const LATENCY_MS = 30;
const CONCURRENCY = 64;

const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  settle();
  const started = performance.now();
  const value = await fn();
  return [value, (performance.now() - started) / 1000];
};

/**
 * v1 and v2 pushed to the S3-protocol server behind the proxy at 30 ms per request, with Redis;
 * beside it the seed's path (one check per chunk), Redis down, a bare parallel-PUT loop of the
 * same chunks, the same warm push to a local repository, and restores from both.
 */
export async function s3(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 128 : 1024) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-s3-'));
  const [server, redis] = await Promise.all([S3Child.start(), RedisServer.start()]);
  const services: Service[] = [];
  const service = (s: Service) => (services.push(s), s);
  try {
    ctx.log(`s3: generating ${size / MiB} MiB v1 and v2`);
    const { v1, v2 } = await versionPair(dir, size);
    await server.command(`latency ${LATENCY_MS}`);
    const team = service(s3Service(server, 'team', redis.url));
    ctx.log('s3: cold push');
    const [cold, coldSeconds] = await timed(() => team.push({ model: 'm', paths: [v1] }));
    await server.command('reset');
    ctx.log('s3: warm push');
    // CPU of the server and of this process (the push, its workers) during the warm push: on
    // these two cores they share, the sum bounds the push's time from below.
    const serverCpuBefore = server.cpuSeconds();
    const clientCpuBefore = process.cpuUsage();
    const [warm, warmSeconds] = await timed(() => team.push({ model: 'm', paths: [v2] }));
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const warmClientCpu = round((clientCpu.user + clientCpu.system) / 1e6);
    const serverCpuAfter = server.cpuSeconds();
    const warmServerCpu =
      serverCpuBefore === null || serverCpuAfter === null
        ? null
        : round(serverCpuAfter - serverCpuBefore);
    const warmHeads = (await server.command('counts'))['HEAD'] ?? 0;

    ctx.log('s3: report and diff of v2, cold (a new client) and kept on this machine');
    const reportCache = join(dir, 'report-cache');
    const fresh = () =>
      service(new Service({ ...s3Options(server, 'team', redis.url), cacheDir: reportCache }));
    // Cold: a new client (as tv starts), nothing kept; then kept, read by that open client (as
    // the app reads it) and by a new one (as tv does).
    const viewer = fresh();
    await server.command('reset');
    const [, reportColdSeconds] = await timed(() => viewer.report('m@v2'));
    const reportColdGets = (await server.command('counts'))['GET'] ?? 0;
    const [reported, reportKeptSeconds] = await timed(() => viewer.report('m@v2'));
    if (!reported.cached) throw new Error('bench: the second report was not read from the cache');
    const [, reportKeptNewSeconds] = await timed(() => fresh().report('m@v2'));
    await server.command('reset');
    const [, diffColdSeconds] = await timed(() => viewer.diff('m@v1', 'm@v2'));
    const diffColdGets = (await server.command('counts'))['GET'] ?? 0;
    const [, diffKeptSeconds] = await timed(() => viewer.diff('m@v1', 'm@v2'));
    const [, diffKeptNewSeconds] = await timed(() => fresh().diff('m@v1', 'm@v2'));

    ctx.log("s3: the seed's path (one has per chunk, warm Redis)");
    await server.command('reset');
    const [, seedSeconds] = await timed(() =>
      team.push({ model: 'seed', paths: [v2], existenceChecks: 'per-chunk' }),
    );
    const seedHeads = (await server.command('counts'))['HEAD'] ?? 0;

    ctx.log('s3: Redis down');
    await redis.kill();
    await server.command('reset');
    const down = service(s3Service(server, 'team', redis.url));
    const [, downSeconds] = await timed(() => down.push({ model: 'other', paths: [v2] }));
    const downHeads = (await server.command('counts'))['HEAD'] ?? 0;

    ctx.log('s3: local warm push for comparison');
    const local = service(
      new Service({ repository: join(dir, 'local-repo'), redisUrl: undefined, mode: 'cli' }),
    );
    await local.push({ model: 'm', paths: [v1] });
    const localCpuBefore = process.cpuUsage();
    const [, localWarmSeconds] = await timed(() => local.push({ model: 'm', paths: [v2] }));
    const localCpu = process.cpuUsage(localCpuBefore);
    const localWarmCpu = round((localCpu.user + localCpu.system) / 1e6);

    ctx.log('s3: bare parallel PUT loop of the same chunks');
    const bytes = await readFile(join(v1, 'model.bin'));
    const hash = await createHasher('sha256');
    const client = new S3Client({
      endpoint: server.endpoint,
      region: TEST_REGION,
      credentials: TEST_CREDENTIALS,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY + 16 }),
      }),
    });
    const cuts = cutPoints(bytes, DEFAULT_PROFILE);
    const [, bareSeconds] = await timed(() =>
      mapLimit(cuts, CONCURRENCY, async (end, i) => {
        const data = bytes.subarray(cuts[i - 1] ?? 0, end);
        await client.send(
          new PutObjectCommand({
            Bucket: server.bucket,
            Key: `bare/${objectKey(hash(data))}`,
            Body: data,
          }),
        );
      }),
    );
    client.destroy();

    ctx.log('s3: restores');
    await redis.restart();
    const [, restoreS3Seconds] = await timed(() => team.pull('m@v2', join(dir, 'restore-s3')));
    const [, restoreLocalSeconds] = await timed(() =>
      local.pull('m@v2', join(dir, 'restore-local')),
    );

    const mbps = (s: number) => round(size / 1e6 / s, 0);
    const coldMbps = mbps(coldSeconds);
    const bareMbps = mbps(bareSeconds);
    return {
      json: {
        s3: {
          latencyMs: LATENCY_MS,
          sizeMiB: size / MiB,
          coldSeconds: round(coldSeconds),
          coldMbps,
          bareMbps,
          coldVsBare: round(coldMbps / bareMbps),
          warmSeconds: round(warmSeconds),
          warmHeads,
          warmChunks: warm.chunks,
          warmHeadsPct: round((100 * warmHeads) / warm.chunks, 3),
          warmVsLocal: round(warmSeconds / localWarmSeconds),
          warmClientCpuSeconds: warmClientCpu,
          warmServerCpuSeconds: warmServerCpu,
          localWarmCpuSeconds: localWarmCpu,
          localWarmSeconds: round(localWarmSeconds),
          seedPathSeconds: round(seedSeconds),
          seedPathHeads: seedHeads,
          redisDownSeconds: round(downSeconds),
          redisDownHeads: downHeads,
          newBytesCold: cold.newBytes,
        },
        s3Report: {
          latencyMs: LATENCY_MS,
          sizeMiB: size / MiB,
          reportColdSeconds: round(reportColdSeconds),
          reportColdGets,
          reportKeptSeconds: round(reportKeptSeconds, 3),
          reportKeptNewClientSeconds: round(reportKeptNewSeconds, 3),
          diffColdSeconds: round(diffColdSeconds),
          diffColdGets,
          diffKeptSeconds: round(diffKeptSeconds, 3),
          diffKeptNewClientSeconds: round(diffKeptNewSeconds, 3),
        },
        restore: {
          fromLocalMbps: mbps(restoreLocalSeconds),
          fromS3Mbps: mbps(restoreS3Seconds),
          latencyMs: LATENCY_MS,
        },
      },
      rows: [
        {
          scenario: 's3',
          metric: 'cold push s',
          value: String(round(coldSeconds)),
          note: `${coldMbps} MB/s at ${LATENCY_MS} ms`,
        },
        {
          scenario: 's3',
          metric: 'bare parallel PUT MB/s',
          value: String(bareMbps),
          note: `cold/bare ${round(coldMbps / bareMbps)} (target >= 0.8)`,
        },
        {
          scenario: 's3',
          metric: 'warm push s',
          value: String(round(warmSeconds)),
          note: `${warmHeads} HEADs for ${warm.chunks} chunks (target <= 1%)`,
        },
        {
          scenario: 's3',
          metric: 'warm S3 / warm local',
          value: String(round(warmSeconds / localWarmSeconds)),
          note: `local ${round(localWarmSeconds)} s (target <= 1.25); CPU s: push ${warmClientCpu} + S3 server ${warmServerCpu ?? '?'} vs local ${localWarmCpu}, on ${availableParallelism()} cores`,
        },
        {
          scenario: 's3',
          metric: "seed's path s",
          value: String(round(seedSeconds)),
          note: `one has per chunk, ${seedHeads} HEADs`,
        },
        {
          scenario: 's3',
          metric: 'Redis down push s',
          value: String(round(downSeconds)),
          note: `no parent: ${downHeads} HEADs, batched`,
        },
        {
          scenario: 'report',
          metric: `${size / MiB} MiB v2 on S3, cold s`,
          value: String(round(reportColdSeconds)),
          note: `${reportColdGets} GETs at ${LATENCY_MS} ms`,
        },
        {
          scenario: 'report',
          metric: 'the same, kept s',
          value: String(round(reportKeptSeconds, 3)),
          note: `open client (the app); a new client (tv) ${round(reportKeptNewSeconds, 3)} s; target well under 1`,
        },
        {
          scenario: 'report',
          metric: `diff v1..v2 on S3, cold s`,
          value: String(round(diffColdSeconds)),
          note: `${diffColdGets} GETs at ${LATENCY_MS} ms`,
        },
        {
          scenario: 'report',
          metric: 'the same, kept s',
          value: String(round(diffKeptSeconds, 3)),
          note: `open client (the app); a new client (tv) ${round(diffKeptNewSeconds, 3)} s`,
        },
        {
          scenario: 'restore',
          metric: 'from local MB/s',
          value: String(mbps(restoreLocalSeconds)),
        },
        {
          scenario: 'restore',
          metric: `from S3 MB/s`,
          value: String(mbps(restoreS3Seconds)),
          note: `${LATENCY_MS} ms per request`,
        },
      ],
    };
  } finally {
    for (const s of services) await s.close().catch(() => {});
    await server.stop();
    await redis.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PushResult, RequestCounts } from '../../shared/types';
import { MiB } from '../../electron/engine/chunking/params';
import { defaultPackSize } from '../../electron/engine/repository/repository';
import { Service } from '../../electron/engine/service';
import { packsInFlight } from '../../electron/engine/storage/compose';
import { S3Store } from '../../electron/engine/storage/s3';
import { TEST_CREDENTIALS, TEST_REGION } from '../../test/harness/s3';
import { versionPair } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { settle, tv } from '../run';
import { RedisServer, S3Child, s3Env, s3Options, s3Repository, s3Service } from '../s3-fixture';

const LATENCY_MS = 30;
/**
 * A workstation's uplink for the one warm push timed through it: 200 Mbit/s, an office's link
 * (the other rows send at loopback speed, where sending costs only CPU).
 */
const UPLINK_BYTES_PER_SECOND = 25_000_000;
/**
 * Warm pushes and restores timed this many times each, S3 and local in turn, each on its own
 * repository (a warm push needs one holding v1 and none of v2's new chunks): one slow moment of a
 * shared machine moves one pair, not the row.
 */
const REPETITIONS = 3;

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  settle();
  const started = performance.now();
  const value = await fn();
  return [value, (performance.now() - started) / 1000];
};

const total = (r: RequestCounts) => Object.values(r).reduce((a, b) => a + b, 0);
const kinds = (r: RequestCounts) =>
  Object.entries(r)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k.toUpperCase()}`)
    .join(', ');

/** One repository's cold push, warm push and restore, at 30 ms per request, with Redis. */
interface Figures {
  coldSeconds: number;
  coldMbps: number;
  coldRequests: RequestCounts;
  warmSeconds: number;
  warmRequests: RequestCounts;
  warmHeads: number;
  warmChunks: number;
  /** CPU seconds of this process (push and workers) and of the S3 server during the warm push. */
  warmClientCpu: number;
  warmServerCpu: number | null;
  restoreMbps: number;
}

/**
 * One quantity timed on S3 and locally, REPETITIONS times each, the two in turn: each side's
 * values, their medians, and the median of the S3/local ratios taken pair by pair.
 */
interface Paired {
  s3: number[];
  local: number[];
  ratios: number[];
  s3Median: number;
  localMedian: number;
  ratioMedian: number;
}

function paired(s3: number[], local: number[]): Paired {
  const ratios = s3.map((v, i) => v / (local[i] as number));
  return {
    s3: s3.map((v) => round(v)),
    local: local.map((v) => round(v)),
    ratios: ratios.map((r) => round(r)),
    s3Median: round(median(s3)),
    localMedian: round(median(local)),
    ratioMedian: round(median(ratios)),
  };
}

/**
 * v1 and v2 pushed to the S3-protocol server (in its own process) at 30 ms per
 * request, with Redis, into repositories of packs (format 3) and, in the same run, one that keeps
 * a blob per object (format 1, as every S3 repository did before packs); restores from both; the
 * warm pushes and restores of the packs paired with the same into local folders, several times in
 * turn (packedAgainstLocal); the seed's one-check-per-chunk path and Redis down; and a push killed
 * with kill -9 and run again.
 */
export async function s3(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 128 : 1024) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-s3-'));
  const [server, redis] = await Promise.all([S3Child.start(), RedisServer.start()]);
  const services: Service[] = [];
  const service = (s: Service) => (services.push(s), s);
  try {
    ctx.log(`s3: generating ${size / MiB} MiB v1 and v2`);
    const pair = await versionPair(dir, size);
    await server.command(`latency ${LATENCY_MS}`);
    const mbps = (s: number) => round(size / 1e6 / s, 0);
    const run = (prefix: string, options: { format?: number }) =>
      measure(ctx, server, redis, pair, dir, prefix, options, service, mbps);
    const { packed, warm, restore, localWarmCpu } = await packedAgainstLocal(
      ctx,
      server,
      redis,
      pair,
      dir,
      service,
      mbps,
    );
    const loose = await run('loose', { format: 1 });
    const uplink = await throughUplink(ctx, server, redis, pair, service);

    ctx.log('s3: report and diff of v2, cold (a new client) and kept on this machine');
    const reportCache = join(dir, 'report-cache');
    const fresh = () =>
      service(new Service({ ...s3Options(server, 'packed-0', redis.url), cacheDir: reportCache }));
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
    const team = service(s3Service(server, 'packed-0', redis.url));
    const [, seedSeconds] = await timed(() =>
      team.push({ model: 'seed', paths: [pair.v2], existenceChecks: 'per-chunk' }),
    );
    const seedHeads = (await server.command('counts'))['HEAD'] ?? 0;

    ctx.log('s3: Redis down');
    await redis.kill();
    await server.command('reset');
    const down = service(s3Service(server, 'packed-0', redis.url));
    const [, downSeconds] = await timed(() => down.push({ model: 'other', paths: [pair.v2] }));
    const downHeads = (await server.command('counts'))['HEAD'] ?? 0;
    await redis.restart();

    const resume = await resumed(ctx, server, pair.v1, size);
    const json = {
      s3: {
        latencyMs: LATENCY_MS,
        sizeMiB: size / MiB,
        packSizeMiB: defaultPackSize(true) / MiB,
        packed,
        loose,
        localWarmSeconds: warm.localMedian,
        localWarmCpuSeconds: localWarmCpu,
        repetitions: REPETITIONS,
        warmPaired: warm,
        uplink,
        seedPathSeconds: round(seedSeconds),
        seedPathHeads: seedHeads,
        redisDownSeconds: round(downSeconds),
        redisDownHeads: downHeads,
        resume,
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
        fromLocalMbps: restore.localMedian,
        fromS3Mbps: packed.restoreMbps,
        fromS3LooseMbps: loose.restoreMbps,
        latencyMs: LATENCY_MS,
        repetitions: REPETITIONS,
        paired: restore,
      },
    };
    return {
      json,
      rows: [
        ...rows(size, packed, loose, {
          warm,
          restore,
          localWarmCpu,
          uplink,
          seedSeconds,
          seedHeads,
          downSeconds,
          downHeads,
          resume,
        }),
        {
          scenario: 'report',
          metric: `${size / MiB} MiB v2 on S3, cold s`,
          value: String(round(reportColdSeconds)),
          note: `${reportColdGets} GETs at ${LATENCY_MS} ms (packs)`,
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
          note: `${diffColdGets} GETs at ${LATENCY_MS} ms (packs)`,
        },
        {
          scenario: 'report',
          metric: 'the same, kept s',
          value: String(round(diffKeptSeconds, 3)),
          note: `open client (the app); a new client (tv) ${round(diffKeptNewSeconds, 3)} s`,
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

async function measure(
  ctx: BenchContext,
  server: S3Child,
  redis: RedisServer,
  pair: { v1: string; v2: string },
  dir: string,
  prefix: string,
  options: { format?: number; packSize?: number },
  service: (s: Service) => Service,
  mbps: (seconds: number) => number,
): Promise<Figures> {
  await s3Repository(server, prefix, options);
  const team = service(s3Service(server, prefix, redis.url));
  ctx.log(`s3: ${prefix}: cold push`);
  const [cold, coldSeconds] = await timed(() => team.push({ model: 'm', paths: [pair.v1] }));
  await server.command('reset');
  ctx.log(`s3: ${prefix}: warm push`);
  // CPU of the server and of this process (the push, its workers) during the warm push: on
  // these two cores they share, the sum bounds the push's time from below.
  const serverCpuBefore = server.cpuSeconds();
  const clientCpuBefore = process.cpuUsage();
  const [warm, warmSeconds] = await timed(() => team.push({ model: 'm', paths: [pair.v2] }));
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const serverCpuAfter = server.cpuSeconds();
  const warmHeads = (await server.command('counts'))['HEAD'] ?? 0;
  ctx.log(`s3: ${prefix}: restore`);
  const [, restoreSeconds] = await timed(() => team.pull('m@v2', join(dir, `restore-${prefix}`)));
  return {
    coldSeconds: round(coldSeconds),
    coldMbps: mbps(coldSeconds),
    coldRequests: (cold as PushResult).requests,
    warmSeconds: round(warmSeconds),
    warmRequests: warm.requests,
    warmHeads,
    warmChunks: warm.chunks,
    warmClientCpu: round((clientCpu.user + clientCpu.system) / 1e6),
    warmServerCpu:
      serverCpuBefore === null || serverCpuAfter === null
        ? null
        : round(serverCpuAfter - serverCpuBefore),
    restoreMbps: mbps(restoreSeconds),
  };
}

/** What packedAgainstLocal measured: the repositories of packs' figures (medians), and the pairs. */
interface AgainstLocal {
  packed: Figures;
  /** Warm push seconds, S3 / local. */
  warm: Paired;
  /** Restore MB/s, S3 / local. */
  restore: Paired;
  /** CPU seconds of a warm local push (median). */
  localWarmCpu: number;
}

/**
 * The repository of packs on S3 against a local folder: REPETITIONS repositories of each, v1
 * pushed cold into every one (the S3 pushes timed), then per repetition a warm push of v2 on each
 * side, and a restore of v2 on each side, the sides in turn (S3 first in even repetitions, the
 * folder first in odd ones) so that the machine's drift hits both.
 */
async function packedAgainstLocal(
  ctx: BenchContext,
  server: S3Child,
  redis: RedisServer,
  pair: { v1: string; v2: string },
  dir: string,
  service: (s: Service) => Service,
  mbps: (seconds: number) => number,
): Promise<AgainstLocal> {
  const teams: Service[] = [];
  const locals: Service[] = [];
  const cold: [PushResult, number][] = [];
  for (let r = 0; r < REPETITIONS; r++) {
    ctx.log(`s3: packed-${r}: cold push (and v1 into local-${r})`);
    await s3Repository(server, `packed-${r}`, {});
    const team = service(s3Service(server, `packed-${r}`, redis.url));
    cold.push(await timed(() => team.push({ model: 'm', paths: [pair.v1] })));
    const local = service(
      new Service({ repository: join(dir, `local-${r}`), redisUrl: undefined, mode: 'cli' }),
    );
    await local.push({ model: 'm', paths: [pair.v1] });
    teams.push(team);
    locals.push(local);
  }
  const warm = { s3: [] as number[], local: [] as number[], heads: [] as number[] };
  const cpu = { s3: [] as number[], server: [] as (number | null)[], local: [] as number[] };
  const restore = { s3: [] as number[], local: [] as number[] };
  let warmResult: PushResult | undefined;
  const cpuSeconds = (before: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1e6;
  };
  const warmS3 = async (r: number) => {
    await server.command('reset');
    // CPU of the server and of this process (the push, its workers) during the warm push: on
    // these two cores they share, the sum bounds the push's time from below.
    const serverBefore = server.cpuSeconds();
    const clientBefore = process.cpuUsage();
    const [result, seconds] = await timed(() =>
      (teams[r] as Service).push({ model: 'm', paths: [pair.v2] }),
    );
    cpu.s3.push(cpuSeconds(clientBefore));
    const serverAfter = server.cpuSeconds();
    cpu.server.push(
      serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore,
    );
    warm.s3.push(seconds);
    warm.heads.push((await server.command('counts'))['HEAD'] ?? 0);
    warmResult ??= result;
  };
  const warmLocal = async (r: number) => {
    const before = process.cpuUsage();
    const [, seconds] = await timed(() =>
      (locals[r] as Service).push({ model: 'm', paths: [pair.v2] }),
    );
    cpu.local.push(cpuSeconds(before));
    warm.local.push(seconds);
  };
  const pull = async (from: Service, into: number[], where: string) => {
    const target = join(dir, where);
    const [, seconds] = await timed(() => from.pull('m@v2', target));
    into.push(mbps(seconds));
    await rm(target, { recursive: true, force: true });
  };
  for (let r = 0; r < REPETITIONS; r++) {
    ctx.log(`s3: warm push and restore, S3 and local in turn (${r + 1} of ${REPETITIONS})`);
    const s3First = r % 2 === 0;
    const inTurn = async (onS3: () => Promise<void>, onLocal: () => Promise<void>) => {
      for (const step of s3First ? [onS3, onLocal] : [onLocal, onS3]) await step();
    };
    await inTurn(
      () => warmS3(r),
      () => warmLocal(r),
    );
    await inTurn(
      () => pull(teams[r] as Service, restore.s3, `restore-s3-${r}`),
      () => pull(locals[r] as Service, restore.local, `restore-local-${r}`),
    );
  }
  const servers = cpu.server.filter((c): c is number => c !== null);
  const coldSeconds = median(cold.map(([, s]) => s));
  const restorePairs = paired(restore.s3, restore.local);
  const first = warmResult as PushResult;
  return {
    packed: {
      coldSeconds: round(coldSeconds),
      coldMbps: mbps(coldSeconds),
      coldRequests: (cold[0] as [PushResult, number])[0].requests,
      warmSeconds: round(median(warm.s3)),
      warmRequests: first.requests,
      warmHeads: median(warm.heads),
      warmChunks: first.chunks,
      warmClientCpu: round(median(cpu.s3)),
      warmServerCpu: servers.length === REPETITIONS ? round(median(servers)) : null,
      restoreMbps: restorePairs.s3Median,
    },
    warm: paired(warm.s3, warm.local),
    restore: restorePairs,
    localWarmCpu: round(median(cpu.local)),
  };
}

interface Uplink {
  bytesPerSecond: number;
  /** The warm push's seconds through the uplink. */
  warmSeconds: number;
  warmRequests: RequestCounts;
  /** What that push sent, and the seconds the link takes for it alone. */
  uploadedBytes: number;
  linkSeconds: number;
}

/**
 * A warm push to S3 through a limited uplink (the server takes request bodies no faster than
 * UPLINK_BYTES_PER_SECOND, all requests sharing it), on a repository of its own holding v1 (pushed
 * at loopback speed), timed once. Beside the warm local push, it shows how much of the upload the
 * push hides behind its reading and hashing: none would add the link's seconds for its bytes.
 */
async function throughUplink(
  ctx: BenchContext,
  server: S3Child,
  redis: RedisServer,
  pair: { v1: string; v2: string },
  service: (s: Service) => Service,
): Promise<Uplink> {
  ctx.log(`s3: uplink: v1, then a warm push through ${(UPLINK_BYTES_PER_SECOND * 8) / 1e6} Mbit/s`);
  await s3Repository(server, 'uplink', {});
  const team = service(s3Service(server, 'uplink', redis.url));
  await team.push({ model: 'm', paths: [pair.v1] });
  await server.command(`uplink ${UPLINK_BYTES_PER_SECOND}`);
  try {
    const [result, seconds] = await timed(() => team.push({ model: 'm', paths: [pair.v2] }));
    return {
      bytesPerSecond: UPLINK_BYTES_PER_SECOND,
      warmSeconds: round(seconds),
      warmRequests: result.requests,
      uploadedBytes: result.uploadedBytes,
      linkSeconds: round(result.uploadedBytes / UPLINK_BYTES_PER_SECOND),
    };
  } finally {
    await server.command('uplink 0');
  }
}

interface Resume {
  packSizeMiB: number;
  /** Index objects (durable packs) when the push was killed. */
  indexedAtKill: number;
  firstRunBytes: number;
  secondRunBytes: number;
  /** What both runs sent beyond the data itself. */
  uploadedTwiceBytes: number;
  /** Packs in flight at most, times the pack size. */
  inFlightBoundBytes: number;
}

/**
 * `tv push` of v1 (cold) killed with SIGKILL once a third of its packs are durable, then run
 * again: the bytes both runs sent (the server counts request bodies, cut-off ones included)
 * beyond the data itself are what was uploaded twice.
 */
async function resumed(
  ctx: BenchContext,
  server: S3Child,
  v1: string,
  size: number,
): Promise<Resume> {
  ctx.log('s3: a push killed with kill -9, then run again');
  const prefix = 'resume';
  await s3Repository(server, prefix);
  const packSize = defaultPackSize(true);
  const env = { ...s3Env(server), TV_REPO: `s3://${server.bucket}/${prefix}`, TV_REDIS_URL: '' };
  await server.command('reset');
  const child = spawn(process.execPath, ['bin/tv.mjs', 'push', 'm', v1], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const bucket = new S3Store(
    { bucket: server.bucket, prefix },
    { endpoint: server.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS },
  );
  let indexed = 0;
  try {
    while (child.exitCode === null) {
      indexed = 0;
      for await (const _ of bucket.list('index/')) indexed++;
      if (indexed >= size / packSize / 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
    await bucket.close();
  }
  const firstRunBytes = (await server.command('bytes'))['PUT'] ?? 0;
  await server.command('reset');
  await tv(['push', 'm', v1, '--json'], env);
  const secondRunBytes = (await server.command('bytes'))['PUT'] ?? 0;
  return {
    packSizeMiB: packSize / MiB,
    indexedAtKill: indexed,
    firstRunBytes,
    secondRunBytes,
    uploadedTwiceBytes: firstRunBytes + secondRunBytes - size,
    inFlightBoundBytes: packsInFlight(packSize, true) * packSize,
  };
}

function rows(
  size: number,
  packed: Figures,
  loose: Figures,
  other: {
    warm: Paired;
    restore: Paired;
    localWarmCpu: number;
    uplink: Uplink;
    seedSeconds: number;
    seedHeads: number;
    downSeconds: number;
    downHeads: number;
    resume: Resume;
  },
): Row[] {
  const gib = size / 2 ** 30;
  const perGiB = (r: RequestCounts) => Math.round(total(r) / gib);
  // The target is for the push measured: a request per 8 MiB plus 20 (scaled to a GiB, the 20 of
  // a small --quick push would count eight times over).
  const target = Math.round(size / (8 * MiB) + 20);
  const mib = (b: number) => round(b / MiB, 1);
  return [
    {
      scenario: 's3',
      metric: 'cold push requests/GiB',
      value: String(perGiB(packed.coldRequests)),
      note: `packs: ${kinds(packed.coldRequests)} for ${size / MiB} MiB (target <= ${target}: 1 per 8 MiB + 20); a blob per chunk: ${perGiB(loose.coldRequests)}/GiB`,
    },
    {
      scenario: 's3',
      metric: 'cold push MB/s',
      value: String(packed.coldMbps),
      note: `a blob per chunk ${loose.coldMbps} MB/s: ${round(packed.coldMbps / loose.coldMbps)}x (target >= 2x) at ${LATENCY_MS} ms`,
    },
    {
      scenario: 's3',
      metric: 'warm S3 / warm local',
      value: String(other.warm.ratioMedian),
      note: `median of ${REPETITIONS} pairs (${other.warm.ratios.join(', ')}); medians ${other.warm.s3Median} s vs local ${other.warm.localMedian} s (target <= 1.15; a blob per chunk, once: ${round(loose.warmSeconds / other.warm.localMedian)}); ${kinds(packed.warmRequests)}, ${packed.warmHeads} HEADs of ${packed.warmChunks} chunks; CPU s (medians): push ${packed.warmClientCpu} + S3 server ${packed.warmServerCpu ?? '?'} vs local ${other.localWarmCpu}, on ${availableParallelism()} cores`,
    },
    {
      scenario: 's3',
      metric: `warm push through ${(other.uplink.bytesPerSecond * 8) / 1e6} Mbit/s s`,
      value: String(other.uplink.warmSeconds),
      note: `once; ${round(other.uplink.warmSeconds / other.warm.localMedian)}x the warm local push (${other.warm.localMedian} s); it sent ${mib(other.uplink.uploadedBytes)} MiB, ${other.uplink.linkSeconds} s on the link alone (a push that sent them after hashing would take about local + that); ${kinds(other.uplink.warmRequests)}`,
    },
    {
      scenario: 'restore',
      metric: 'from S3 MB/s',
      value: String(packed.restoreMbps),
      note: `median of ${REPETITIONS}; ${other.restore.ratioMedian}x a folder's ${other.restore.localMedian} MB/s (median of pairs: ${other.restore.ratios.join(', ')}; targets >= 150 and >= 0.5x); a blob per chunk, once: ${loose.restoreMbps} MB/s`,
    },
    {
      scenario: 's3',
      metric: 'resumed push: MiB sent twice',
      value: String(mib(other.resume.uploadedTwiceBytes)),
      note: `killed with ${other.resume.indexedAtKill} packs indexed; at most ${mib(other.resume.inFlightBoundBytes)} MiB in flight (${other.resume.packSizeMiB} MiB packs)`,
    },
    {
      scenario: 's3',
      metric: "seed's path s",
      value: String(round(other.seedSeconds)),
      note: `one has per chunk, ${other.seedHeads} HEADs`,
    },
    {
      scenario: 's3',
      metric: 'Redis down push s',
      value: String(round(other.downSeconds)),
      note: `no parent: ${other.downHeads} HEADs (the index answers)`,
    },
  ];
}

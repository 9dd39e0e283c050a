import { randomFillSync } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MiB } from '../../electron/engine/chunking/params';
import { TEST_CREDENTIALS, TEST_REGION } from '../../test/harness/s3';
import { randomFile } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { RedisCluster, RedisServer, S3Child } from '../s3-fixture';
import { tv } from '../run';

const PUSHERS = 16;
const LATENCY_MS = 30;

interface Phase {
  kind: 'standalone' | 'cluster';
  aloneMbps: number;
  aggregateMbps: number;
  wallSeconds: number;
  /** S3 requests of the 16 pushes, by method and what they named or carried ("GET pack"...). */
  requests: Record<string, number>;
  /**
   * Requests of the 16 pushes for keys the base's push wrote, by method and what they fetched
   * ("GET version", "GET pack"...), and how many keys it wrote.
   */
  ofBase: Record<string, number>;
  baseObjects: number;
  /** Most Redis connections open at once during the 16 pushes (the sampler's own excluded). */
  peakConnections: number;
  /** The 16 versions' numbers, as `tv log` lists them once every push finished. */
  versions: number[];
  /** Pushes whose own output named another number than the log's (a concurrent push's ref sorted before theirs). */
  renumbered: number;
  verify: string;
}

/**
 * A team at work: one shared base model pushed once, then 16 `tv` processes at once, each pushing
 * its own fine-tune of it (a few regions rewritten) as a new version of the same model, to the
 * S3-protocol server at 30 ms a request; with one Redis server, then with a 3-master cluster. A
 * fine-tune pushed alone beforehand gives the one-pusher figure.
 */
export async function team(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 8 : 24) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-team-'));
  const server = await S3Child.start();
  try {
    ctx.log(`team: a ${size / MiB} MiB base and ${PUSHERS + 1} fine-tunes`);
    const base = join(dir, 'base');
    await mkdir(base);
    await randomFile(join(base, 'model.bin'), size);
    const tunes = await Promise.all(
      Array.from({ length: PUSHERS + 1 }, (_, i) => fineTune(base, join(dir, `tune-${i}`), i)),
    );
    await server.command(`latency ${LATENCY_MS}`);
    await server.command('record');
    const phases: Phase[] = [];
    for (const kind of ['standalone', 'cluster'] as const) {
      ctx.log(`team: Redis ${kind}`);
      phases.push(await phase(kind, server, base, tunes, size));
    }
    return report(phases, size);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function phase(
  kind: Phase['kind'],
  server: S3Child,
  base: string,
  tunes: string[],
  size: number,
): Promise<Phase> {
  const redis = kind === 'standalone' ? await RedisServer.start() : await RedisCluster.start();
  const ports = redis instanceof RedisCluster ? redis.nodes.map((n) => n.port) : [redis.port];
  try {
    const env = {
      TV_REPO: `s3://${server.bucket}/team-${kind}`,
      TV_REDIS_URL: redis.url,
      AWS_ENDPOINT_URL_S3: server.endpoint,
      AWS_REGION: TEST_REGION,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    };
    const push = async (path: string) => {
      const ran = await tv(['push', 'team-model', path, '--json'], env);
      return {
        seconds: ran.seconds,
        ...(JSON.parse(ran.stdout) as { number: number; id: string }),
      };
    };
    await server.command('reset');
    await push(base);
    const baseObjects = new Set(
      (await requestList(server)).filter((r) => r.startsWith('PUT ')).map((r) => r.split(' ')[1]!),
    );
    const alone = await push(tunes[PUSHERS] as string);
    await server.command('reset');
    const sampler = await connectionSampler(ports);
    const started = performance.now();
    const pushed = await Promise.all(tunes.slice(0, PUSHERS).map(push));
    const wallSeconds = (performance.now() - started) / 1000;
    const peakConnections = sampler.stop();
    const requests = await server.command('kinds');
    const ofBase: Record<string, number> = {};
    for (const r of await requestList(server)) {
      const [method, path, kind] = r.split(' ');
      if (baseObjects.has(path!))
        ofBase[`${method} ${kind}`] = (ofBase[`${method} ${kind}`] ?? 0) + 1;
    }
    const verified = await tv(['verify'], env);
    const log = JSON.parse((await tv(['log', 'team-model', '--json'], env)).stdout) as {
      id: string;
      number: number;
    }[];
    const numberOf = new Map(log.map((v) => [v.id, v.number]));
    return {
      kind,
      aloneMbps: size / 1e6 / alone.seconds,
      aggregateMbps: (PUSHERS * size) / 1e6 / wallSeconds,
      wallSeconds,
      requests,
      peakConnections,
      ofBase,
      baseObjects: baseObjects.size,
      versions: pushed.map((p) => numberOf.get(p.id) ?? 0).sort((a, b) => a - b),
      renumbered: pushed.filter((p) => numberOf.get(p.id) !== p.number).length,
      verify: verified.stdout.trim().split('\n').at(-1) ?? '',
    };
  } finally {
    await redis.dispose();
  }
}

async function requestList(server: S3Child): Promise<string[]> {
  const answer = (await server.command('requests')) as unknown as { requests: string[] };
  return answer.requests;
}

/** A copy of the base with 8 regions of 64 KiB rewritten, at places that differ per fine-tune. */
async function fineTune(base: string, into: string, seed: number): Promise<string> {
  await mkdir(into, { recursive: true });
  const path = join(into, 'model.bin');
  await copyFile(join(base, 'model.bin'), path);
  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    const region = Buffer.allocUnsafe(64 * 1024);
    for (let k = 0; k < 8; k++) {
      randomFillSync(region);
      const at = Math.floor(((k + (seed + 1) / (PUSHERS + 2)) * size) / 8) % (size - region.length);
      await handle.write(region, 0, region.length, at);
    }
  } finally {
    await handle.close();
  }
  return into;
}

/** Samples connected_clients of every master every 100 ms; stop() gives the peak (own excluded). */
async function connectionSampler(ports: number[]): Promise<{ stop(): number }> {
  const clients = ports.map((port) => new Redis(port, '127.0.0.1'));
  let peak = 0;
  const sample = async () => {
    const counts = await Promise.all(
      clients.map(async (c) => {
        const info = await c.info('clients');
        return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0) - 1;
      }),
    );
    peak = Math.max(
      peak,
      counts.reduce((a, b) => a + b, 0),
    );
  };
  await sample();
  const timer = setInterval(() => void sample().catch(() => {}), 100);
  return {
    stop: () => {
      clearInterval(timer);
      for (const c of clients) c.disconnect();
      return peak;
    },
  };
}

/** What the test S3 server names chunk data: a pack, or a loose object that is a chunk. */
const CHUNK_DATA = new Set(['pack', 'chunk']);

const count = (kinds: Record<string, number>, which: (kind: string) => boolean) =>
  Object.entries(kinds).reduce((n, [k, v]) => n + (which(k) ? v : 0), 0);

const describe = (kinds: Record<string, number>) =>
  Object.entries(kinds)
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

function report(phases: Phase[], size: number): ScenarioResult {
  const rows: Row[] = phases.flatMap((p) => {
    const r = p.requests;
    const distinct = new Set(p.versions).size;
    return [
      {
        scenario: 'team',
        metric: `${PUSHERS} pushers MB/s, ${p.kind}`,
        value: String(round(p.aggregateMbps, 1)),
        note: `one alone ${round(p.aloneMbps, 1)} MB/s: ${round(p.aggregateMbps / p.aloneMbps, 2)}x; ${round(p.wallSeconds)} s for ${PUSHERS} x ${size / MiB} MiB at ${LATENCY_MS} ms`,
      },
      {
        scenario: 'team',
        metric: `S3 requests, ${p.kind}`,
        value: String(Object.values(r).reduce((a, b) => a + b, 0)),
        note: describe(r),
      },
      {
        scenario: 'team',
        metric: `HEAD of the base's objects, ${p.kind}`,
        value: String(count(p.ofBase, (k) => k.startsWith('HEAD '))),
        note: `of the ${p.baseObjects} keys the base's push wrote (target 0)`,
      },
      {
        scenario: 'team',
        metric: `GET of the base's chunk data, ${p.kind}`,
        value: String(count(p.ofBase, (k) => k.startsWith('GET ') && CHUNK_DATA.has(k.slice(4)))),
        note: 'its packs and loose chunks (target 0)',
      },
      {
        scenario: 'team',
        metric: `GET of the base's records, ${p.kind}`,
        value: String(count(p.ofBase, (k) => k.startsWith('GET ') && !CHUNK_DATA.has(k.slice(4)))),
        note:
          describe(
            Object.fromEntries(
              Object.entries(p.ofBase).filter(
                ([k]) => k.startsWith('GET ') && !CHUNK_DATA.has(k.slice(4)),
              ),
            ),
          ) || 'none',
      },
      {
        scenario: 'team',
        metric: `Redis connections, ${p.kind}`,
        value: String(p.peakConnections),
        note: `peak for ${PUSHERS} processes: ${round(p.peakConnections / PUSHERS, 1)} each`,
      },
      {
        scenario: 'team',
        metric: `versions landed, ${p.kind}`,
        value: String(p.versions.length),
        note: `${distinct} distinct numbers in tv log (${p.versions[0]}-${p.versions.at(-1)}; ${p.renumbered} pushes printed another); verify: ${p.verify}`,
      },
    ];
  });
  return {
    json: {
      team: Object.fromEntries(
        phases.map((p) => [
          p.kind,
          {
            sizeMiB: size / MiB,
            pushers: PUSHERS,
            latencyMs: LATENCY_MS,
            aloneMbps: round(p.aloneMbps, 1),
            aggregateMbps: round(p.aggregateMbps, 1),
            wallSeconds: round(p.wallSeconds),
            requests: p.requests,
            peakRedisConnections: p.peakConnections,
            ofBase: p.ofBase,
            baseObjectHeads: count(p.ofBase, (k) => k.startsWith('HEAD ')),
            baseObjectGets: count(p.ofBase, (k) => k.startsWith('GET ')),
            baseChunkDataGets: count(
              p.ofBase,
              (k) => k.startsWith('GET ') && CHUNK_DATA.has(k.slice(4)),
            ),
            versions: p.versions,
            renumbered: p.renumbered,
            verify: p.verify,
          },
        ]),
      ),
    },
    rows,
  };
}

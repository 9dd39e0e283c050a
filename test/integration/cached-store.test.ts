import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CachedStore, type CacheHealth } from '../../electron/engine/storage/cached';
import { openBackend } from '../../electron/engine/storage/compose';
import { CountingStore } from '../../electron/engine/storage/counting';
import { MemoryStore } from '../../electron/engine/storage/memory';
import { Cluster, Redis } from 'ioredis';
import { RedisConnection } from '../../electron/engine/storage/redis';
import { objectKey, readAll, StoreError } from '../../electron/engine/storage/store';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { freePort } from '../harness/ports';
import { BlackholeServer, RedisCluster, RedisServer } from '../harness/redis';
import { S3Server, TEST_CREDENTIALS } from '../harness/s3';
import { cacheKey, cachedStore, diskStore, s3Options, s3Store } from './stores';

const object = (size = 2000) => {
  const data = randomBytes(size);
  const hash = createHash('sha256').update(data).digest('hex');
  return { data, hash, key: objectKey(hash) };
};

/**
 * The suite runs against one redis-server and against a 3-master Redis Cluster, each started once
 * for the file. `redis` is the one the running block uses; on the cluster, kill, restart, pause
 * and resume act on every master (the whole cluster down); the cluster's own faults (one master
 * down) are tested at the end.
 */
interface CacheServer {
  readonly url: string;
  readonly running: boolean;
  kill(): Promise<void>;
  restart(): Promise<void>;
  pause(): void;
  resume(): void;
}

function wholeCluster(cluster: RedisCluster): CacheServer {
  return {
    url: cluster.url,
    get running() {
      return cluster.nodes.every((n) => n.running);
    },
    kill: async () => void (await Promise.all(cluster.nodes.map((n) => n.kill()))),
    restart: async () => {
      await Promise.all(cluster.nodes.map((n) => n.restart()));
      await cluster.waitOk();
    },
    pause: () => cluster.nodes.forEach((n) => n.pause()),
    resume: () => cluster.nodes.forEach((n) => n.resume()),
  };
}

let standalone: RedisServer;
let cluster: RedisCluster;
let redis: CacheServer;
let s3: S3Server;
const disposers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  [standalone, cluster, s3] = await Promise.all([
    RedisServer.start(),
    RedisCluster.start(),
    S3Server.start(),
  ]);
});
afterEach(async () => {
  s3.faults.latencyMs = 0;
  s3.faults.slowDownRate = 0;
  for (const dispose of disposers.splice(0).reverse()) await dispose();
  for (const server of [standalone, wholeCluster(cluster)]) {
    server.resume();
    if (!server.running) await server.restart();
  }
  for (const node of cluster.nodes) if (!node.running) await node.restart();
  await cluster.waitOk();
});
afterAll(async () => {
  await Promise.all([standalone?.dispose(), cluster?.dispose(), s3?.stop()]);
});

/** A client of the running block's Redis, for looking at keys behind the cache's back. */
function rawClient(): Redis | Cluster {
  const client =
    redis.url === standalone.url
      ? new Redis(redis.url)
      : new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  disposers.push(async () => client.disconnect());
  return client;
}

let prefix = 0;
async function cachedOverS3(
  options: Parameters<typeof cachedStore>[2] = {},
  s3Extra: Parameters<typeof s3Store>[2] = {},
) {
  const cached = await cachedStore(s3Store(s3, `cache-${++prefix}`, s3Extra), redis.url, {
    namespace: `ns${prefix}`,
    ...options,
  });
  disposers.push(cached.dispose);
  return cached.store;
}

async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(['standalone', 'cluster'] as const)('CachedStore on Redis %s', (kind) => {
  beforeAll(() => {
    redis = kind === 'standalone' ? standalone : wholeCluster(cluster);
  });

  describe('CachedStore (ADR-012) over S3, requests counted by the server', () => {
    it('warm: has, hasMany and put of known objects make no backend request', async () => {
      const store = await cachedOverS3();
      const objects = Array.from({ length: 50 }, () => object());
      for (const o of objects) await store.put(o.key, o.data);
      s3.resetCounts();
      for (const o of objects) expect(await store.has(o.key)).toBe(true);
      expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
      for (const o of objects) await store.put(o.key, o.data);
      expect(s3.totalRequests).toBe(0);
      const health = store.health();
      expect(health.hits).toBe(150);
      expect(health.backendCallsAvoided).toBe(150);
      expect(health.state).toBe('up');
    });

    it('cold: a backend hit is backfilled, and the next check makes no backend request', async () => {
      const store = await cachedOverS3();
      const backendOnly = s3Store(s3, `cache-${prefix}`);
      disposers.push(() => backendOnly.close());
      const objects = Array.from({ length: 20 }, () => object());
      for (const o of objects) await backendOnly.put(o.key, o.data); // behind the cache's back
      s3.resetCounts();
      expect(await store.has(objects[0]!.key)).toBe(true);
      expect(await store.hasMany(objects.slice(1).map((o) => o.key))).toEqual(
        objects.slice(1).map(() => true),
      );
      expect(s3.count('HEAD')).toBe(20);
      await store.idle();
      expect(store.health().backfills).toBe(20);
      s3.resetCounts();
      expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
      expect(await store.has(objects[0]!.key)).toBe(true);
      expect(s3.totalRequests).toBe(0);
    });

    it('a check of many keys across batches answers each in its place: objects Redis claims, objects only the backend holds, absent ones and keys that are no object', async () => {
      const memory = new MemoryStore();
      const backend = new CountingStore(memory);
      // Batches of 100 keys: 2,500 keys make several round trips to each master.
      const cached = await cachedStore(backend, redis.url, {
        namespace: `ns${++prefix}`,
        batchSize: 100,
      });
      disposers.push(cached.dispose);
      const store = cached.store;
      const warm = Array.from({ length: 1500 }, () => object(40));
      const cold = Array.from({ length: 500 }, () => object(40));
      for (const o of warm) await store.put(o.key, o.data);
      for (const o of cold) await memory.put(o.key, o.data); // behind the cache's back
      const absent = Array.from({ length: 400 }, () => object(40));
      const notObjects = [
        'refs/model/0001-v1',
        `objects/ab/cd${'0'.repeat(62)}`, // its folder is not its hash's start
        `objects/${'A'.repeat(2)}/${'A'.repeat(64)}`, // upper case: not a hash
        'index/0001-aa',
      ];
      await memory.put(notObjects[0]!, Buffer.from('ref'));
      // Interleaved, so that every batch holds some of each.
      const asked: { key: string; expected: boolean }[] = [];
      for (let i = 0; i < 1500; i++) {
        asked.push({ key: warm[i]!.key, expected: true });
        if (i < 500) asked.push({ key: cold[i]!.key, expected: true });
        if (i < 400) asked.push({ key: absent[i]!.key, expected: false });
        if (i % 400 === 0) asked.push({ key: notObjects[i / 400]!, expected: i === 0 });
      }
      backend.reset();
      expect(await store.hasMany(asked.map((a) => a.key))).toEqual(asked.map((a) => a.expected));
      // The backend was asked about the others only, once, together.
      expect(backend.calls.hasMany).toBe(1);
      expect(backend.keysChecked).toBe(500 + 400 + notObjects.length);
      await store.idle();
      expect(store.health().backfills).toBe(500);
      backend.reset();
      expect(await store.hasMany(cold.map((o) => o.key))).toEqual(cold.map(() => true));
      expect(backend.total).toBe(0);
    });

    it('a miss that the backend does not hold either is not cached', async () => {
      const store = await cachedOverS3();
      const o = object();
      expect(await store.has(o.key)).toBe(false);
      await store.idle();
      s3.resetCounts();
      expect(await store.has(o.key)).toBe(false);
      expect(s3.count('HEAD')).toBe(1);
    });

    it('write-through happens only after the backend confirmed the upload', async () => {
      const store = await cachedOverS3({}, { retryForMs: 1_000 });
      const redisClient = rawClient();
      const o = object();
      s3.faults.slowDownRate = 1; // every upload refused
      await expect(store.put(o.key, o.data)).rejects.toThrow(/SlowDown|503/);
      s3.faults.slowDownRate = 0;
      expect(await redisClient.exists(cacheKey(`ns${prefix}`, o.hash))).toBe(0);
      await store.put(o.key, o.data);
      expect(await redisClient.get(cacheKey(`ns${prefix}`, o.hash))).toBe('1');
      expect(await redisClient.ttl(cacheKey(`ns${prefix}`, o.hash))).toBeGreaterThan(
        29 * 24 * 3600,
      );
    });

    it('uploads through injected 503 SlowDown answers (the SDK retries)', async () => {
      const store = await cachedOverS3();
      const objects = Array.from({ length: 40 }, () => object());
      s3.resetCounts();
      s3.faults.slowDownRate = 0.1; // every tenth request refused

      await Promise.all(objects.map((o) => store.put(o.key, o.data)));
      s3.faults.slowDownRate = 0;
      expect(s3.injectedSlowDowns).toBeGreaterThanOrEqual(4);
      for (const o of objects) expect((await readAll(store, o.key)).equals(o.data)).toBe(true);
    });

    it('Redis killed mid-way through a batch of puts: every put succeeds and lands in the bucket', async () => {
      const store = await cachedOverS3();
      const states: CacheHealth['state'][] = [];
      store.on('state', (h: CacheHealth) => states.push(h.state));
      const objects = Array.from({ length: 200 }, () => object());
      await Promise.all(
        objects.map(async (o, i) => {
          if (i === 60) await redis.kill();
          await store.put(o.key, o.data);
        }),
      );
      const backendOnly = s3Store(s3, `cache-${prefix}`);
      disposers.push(() => backendOnly.close());
      expect(await backendOnly.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
      expect(store.health().state).toBe('down');
      expect(store.health().fallbacks).toBeGreaterThan(0);
      expect(states).toEqual(['down']);

      // Redis back: the probe closes the circuit, state goes degraded then up, caching resumes.
      await redis.restart();
      await until(() => states.at(-1) === 'up');
      expect(states).toEqual(['down', 'degraded', 'up']);
      expect(store.state).toBe('up');
      const fresh = object();
      await store.put(fresh.key, fresh.data);
      s3.resetCounts();
      expect(await store.has(fresh.key)).toBe(true);
      expect(s3.totalRequests).toBe(0);
    });

    it("two repositories sharing one Redis never see each other's objects", async () => {
      const a = await cachedOverS3({ namespace: 'repository-a' });
      const b = await cachedOverS3({ namespace: 'repository-b' });
      const o = object();
      await a.put(o.key, o.data);
      expect(await a.has(o.key)).toBe(true);
      expect(await b.has(o.key)).toBe(false);
      expect(await b.hasMany([o.key])).toEqual([false]);
      await b.idle();
      expect(await b.has(o.key)).toBe(false);
    });

    it('delete removes the cache key first, and refuses while Redis cannot confirm that', async () => {
      const store = await cachedOverS3();
      const o = object();
      await store.put(o.key, o.data);
      await redis.kill();
      await expect(store.delete(o.key)).rejects.toThrow(
        /could not remove its key first.*nothing was deleted/,
      );
      await redis.restart();
      await until(() => store.state !== 'down');
      // Redis restarted empty; the object is still in the bucket.
      expect(await store.has(o.key)).toBe(true);
      await store.delete(o.key);
      s3.resetCounts();
      expect(await store.has(o.key)).toBe(false);
      expect(s3.count('HEAD')).toBe(1);
    });
  });

  describe('CachedStore on a connection slower than its start-up budget', () => {
    /**
     * A store whose connection to Redis is held for 800 ms before it is passed on (a cluster
     * over TLS on a loaded machine connects in about that time), connecting from now on. No
     * probe before the flush: the flush itself must find the connection ready.
     */
    async function slowStartStore(): Promise<{ store: CachedStore; namespace: string }> {
      const slow = await slowStartProxy(redis, 800);
      disposers.push(slow.close);
      const namespace = `ns${++prefix}`;
      const store = new CachedStore(new MemoryStore(), new RedisConnection(slow.url), {
        namespace,
        startupMs: 250,
        probeIntervalMs: 60_000,
      });
      disposers.push(() => store.close());
      store.connect();
      return { store, namespace };
    }

    it('claims made before the connection was ready are written once it is, by the flush at the latest', async () => {
      const { store, namespace } = await slowStartStore();
      const objects = Array.from({ length: 30 }, () => object(50));
      for (const o of objects) await store.put(o.key, o.data);
      expect(store.state).toBe('down');
      await until(() => store.connection.ready);
      await store.flush();
      await store.idle();
      const raw = rawClient();
      const values = await Promise.all(objects.map((o) => raw.get(cacheKey(namespace, o.hash))));
      expect(values).toEqual(objects.map(() => '1'));
      expect(store.state).not.toBe('down');
    });

    it('a claim kept for later is dropped when its object is forgotten (deleted) before Redis took it', async () => {
      const { store, namespace } = await slowStartStore();
      const objects = Array.from({ length: 10 }, () => object(50));
      for (const o of objects) await store.put(o.key, o.data);
      await until(() => store.connection.ready);
      const [gone, ...kept] = objects;
      await store.delete(gone!.key);
      await store.flush();
      await store.idle();
      const raw = rawClient();
      expect(await raw.get(cacheKey(namespace, gone!.hash))).toBeNull();
      const values = await Promise.all(kept.map((o) => raw.get(cacheKey(namespace, o.hash))));
      expect(values).toEqual(kept.map(() => '1'));
    });
  });

  describe('CachedStore when Redis does not answer', () => {
    const N = 10_000;
    // A wait of even 2 ms per call (a timeout, or a connection attempt, paid call by call) would
    // add 20 s over N calls; the margin is that, not a speed check, so a loaded machine passes.
    const PER_CALL_WAIT_MARGIN_MS = 20_000;
    async function sequentialHas(store: { has(k: string): Promise<boolean> }, keys: string[]) {
      const started = performance.now();
      for (const key of keys) await store.has(key);
      return performance.now() - started;
    }

    it('a port that accepts and never replies: 10,000 has calls pay no timeouts (circuit breaker)', async () => {
      const disk = await diskStore();
      disposers.push(disk.dispose);
      const keys = Array.from({ length: N }, () => object(10).key);
      const blackhole = await BlackholeServer.start();
      disposers.push(() => blackhole.close());
      const url =
        kind === 'cluster' ? `redis+cluster://127.0.0.1:${blackhole.port}` : blackhole.url;
      const cached = await cachedStore(new CountingStore(disk.store), url, {
        probeIntervalMs: 200,
        startupMs: 250, // the default: what a first command waits for a connection
      });
      disposers.push(cached.dispose);
      const withoutCache = await sequentialHas(disk.store, keys);
      const withCache = await sequentialHas(cached.store, keys);
      const health = cached.store.health();
      expect(health.state).toBe('down');
      expect(health.errors).toBeLessThanOrEqual(2);
      expect(health.fallbacks).toBeGreaterThanOrEqual(N - 2);
      expect(withCache).toBeLessThan(withoutCache + PER_CALL_WAIT_MARGIN_MS);
    });

    it('a Redis that hangs mid-run (SIGSTOP): a timeout and a PING that times out too open the circuit, then the backend answers; back when it resumes', async () => {
      const disk = await diskStore();
      disposers.push(disk.dispose);
      const cached = await cachedStore(disk.store, redis.url, { probeIntervalMs: 100 });
      disposers.push(cached.dispose);
      const store: CachedStore = cached.store;
      const objects = Array.from({ length: 100 }, () => object(100));
      for (const o of objects) await store.put(o.key, o.data);
      await store.flush(); // a folder's objects are claimed once durable
      redis.pause();
      const keys = Array.from({ length: N }, (_, i) => objects[i % objects.length]!.key);
      const withoutCache = await sequentialHas(disk.store, keys);
      const withCache = await sequentialHas(store, keys);
      expect(store.state).toBe('down');
      // Each master and the cluster's own probe may each time out once or twice.
      expect(store.health().timeouts).toBeLessThanOrEqual(kind === 'cluster' ? 9 : 3);
      expect(store.health().lastError).toMatch(/did not answer within \d+ ms/);
      expect(withCache).toBeLessThan(withoutCache + PER_CALL_WAIT_MARGIN_MS);
      redis.resume();
      await until(() => store.state === 'up');
      const before = store.health().hits;
      expect(await store.has(objects[0]!.key)).toBe(true);
      expect(store.health().hits).toBe(before + 1);
    });
  });
});

describe('bad input gets one clear error, within seconds', () => {
  it('an unknown bucket', async () => {
    await expect(openBackend('s3://no-such-bucket-here/models', s3Options(s3))).rejects.toThrow(
      /the bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+: create it or check the repository URL/,
    );
  });

  it('wrong credentials', async () => {
    const options = s3Options(s3, {
      credentials: { accessKeyId: 'WRONG', secretAccessKey: 'nope' },
    });
    const error = await openBackend(`s3://${s3.bucket}/models`, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(
      /S3 refused the credentials \((InvalidAccessKeyId|HTTP 403)\): check AWS_ACCESS_KEY_ID/,
    );
    expect((error as Error).message).not.toContain(TEST_CREDENTIALS.secretAccessKey);
  });

  it('an unreachable endpoint', async () => {
    const closedPort = await freePort();
    const started = Date.now();
    await expect(
      openBackend(`s3://${s3.bucket}`, {
        ...s3Options(s3),
        endpoint: `http://127.0.0.1:${closedPort}`,
        maxAttempts: 2,
      }),
    ).rejects.toThrow(/cannot reach S3 at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a malformed Redis URL or repository location', async () => {
    expect(() => new RedisConnection('localhost:6379')).toThrow(
      /the Redis setting is not a Redis URL \("localhost:6379"\): expected redis:\/\/\[\[user\]:password@\]host/,
    );
    await expect(openBackend('ftp://example/models')).rejects.toThrow(
      /unsupported repository location "ftp:\/\/example\/models"/,
    );
    await expect(openBackend('s3://UPPER_case')).rejects.toThrow(/cannot read the S3 location/);
  });
});

/**
 * A TCP proxy to the running block's Redis (every master of the cluster, by port) that holds each
 * connection for `delayMs` before passing it on: a Redis that is slow to connect to.
 */
async function slowStartProxy(
  server: CacheServer,
  delayMs: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const targets =
    server.url === standalone.url ? [standalone.port] : cluster.nodes.map((n) => n.port);
  const proxies = await Promise.all(
    targets.map(async (port) => {
      const sockets = new Set<Socket>();
      const proxy = createServer((client) => {
        sockets.add(client);
        client.pause();
        client.on('error', () => {});
        setTimeout(() => {
          const upstream = connect(port, '127.0.0.1', () => {
            client.pipe(upstream).pipe(client);
            client.resume();
          });
          sockets.add(upstream);
          upstream.on('error', () => client.destroy());
          client.on('close', () => upstream.destroy());
        }, delayMs);
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      return { proxy, sockets, port: (proxy.address() as AddressInfo).port };
    }),
  );
  const list = proxies.map((p) => `127.0.0.1:${p.port}`);
  return {
    url: targets.length === 1 ? `redis://${list[0]}` : `redis+cluster://${list.join(',')}`,
    close: async () => {
      for (const p of proxies) {
        for (const socket of p.sockets) socket.destroy();
        await new Promise((resolve) => p.proxy.close(resolve));
      }
    },
  };
}

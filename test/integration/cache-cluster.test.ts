import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../electron/engine/concurrency';
import { Service } from '../../electron/engine/service';
import { cacheStatus } from '../../electron/engine/storage/cache-status';
import type { CachedStore } from '../../electron/engine/storage/cached';
import { objectKey } from '../../electron/engine/storage/store';
import {
  RedisCluster,
  RedisServer,
  redisTlsUnsupported,
  selfSignedCertificate,
} from '../harness/redis';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { cacheKey, cachedStore, s3Options, s3Store, tempDir } from './stores';
import { json, tv } from './tv';

/** What a Redis Cluster adds: batches per master and per slot, and one master down. */

/** Why the TLS test cannot run here (undefined: it runs). */
const tlsUnsupported = await redisTlsUnsupported();

let cluster: RedisCluster;
let s3: S3Server;
let work: { path: string; remove(): Promise<void> };
const disposers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  [cluster, s3, work] = await Promise.all([
    RedisCluster.start(),
    S3Server.start(),
    tempDir('tv-cluster-'),
  ]);
});
afterEach(async () => {
  s3.faults.latencyMs = 0;
  // A master a test left paused would hang the checks below.
  for (const node of cluster.nodes) node.resume();
  for (const dispose of disposers.splice(0).reverse()) await dispose();
  for (const node of cluster.nodes) if (!node.running) await node.restart();
  await cluster.waitOk();
});
afterAll(async () => {
  await Promise.all([cluster?.dispose(), s3?.stop(), work?.remove()]);
});

const object = (size = 500) => {
  const data = randomBytes(size);
  const hash = createHash('sha256').update(data).digest('hex');
  return { data, hash, key: objectKey(hash) };
};

let prefix = 0;
async function cachedOverS3(namespace: string): Promise<CachedStore> {
  const cached = await cachedStore(s3Store(s3, `cluster-${++prefix}`), cluster.url, {
    namespace,
  });
  disposers.push(cached.dispose);
  return cached.store;
}

/** A direct client of one master. */
function master(port: number): Redis {
  const client = new Redis(port, '127.0.0.1');
  disposers.push(async () => client.disconnect());
  return client;
}

const portOf = (address: string) => Number(address.split(':').at(-1));

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('CachedStore on a 3-master Redis Cluster', () => {
  it('asks each master for its keys with one MGET per slot, and finds every key with SCAN on every master', async () => {
    const store = await cachedOverS3('batching');
    const objects = Array.from({ length: 3000 }, () => object(50));
    // The keys a push writes, written behind the cache's back in the documented layout.
    const writer = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    disposers.push(async () => writer.disconnect());
    await Promise.all(objects.map((o) => writer.set(cacheKey('batching', o.hash), '1')));
    const masters = cluster.nodes.map((n) => master(n.port));
    await Promise.all(masters.map((m) => m.config('RESETSTAT')));
    s3.resetCounts();

    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect(s3.totalRequests).toBe(0);
    const mgets = await Promise.all(
      masters.map(async (m) => {
        const stats = await m.info('commandstats');
        return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      }),
    );
    // 3000 keys over 256 slots: each master got some, in MGETs of a slot each (one batch of at
    // most 1000 keys per master, 2 at most where a master serves more than 1000 of them).
    for (const calls of mgets) expect(calls).toBeGreaterThan(0);
    const total = mgets.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(256 * 2);
    expect(total).toBeGreaterThanOrEqual(256);

    const claimed = new Set<string>();
    for await (const page of store.claimedHashes()) for (const h of page) claimed.add(h);
    expect(claimed.size).toBe(3000);

    // Deleting keys across slots and masters (a DEL per slot) leaves none behind.
    await store.forget(objects.slice(0, 1000).map((o) => o.hash));
    expect(await store.claims(objects.slice(0, 1000).map((o) => o.hash))).toEqual(
      objects.slice(0, 1000).map(() => false),
    );
  });

  it('one master killed: only its keys go to the backend, the others answer from Redis, and it is back when it restarts', async () => {
    const store = await cachedOverS3('one-down');
    const objects = Array.from({ length: 150 }, () => object());
    for (const o of objects) await store.put(o.key, o.data);
    const { keys } = store.internals();
    const victim = keys.addressOf(objects[0]!.hash)!;
    const onVictim = objects.filter((o) => keys.addressOf(o.hash) === victim);
    expect(onVictim.length).toBeGreaterThan(15);
    expect(onVictim.length).toBeLessThan(100);
    const node = cluster.nodes.find((n) => n.port === portOf(victim))!;

    await node.kill();
    s3.resetCounts();
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect(s3.count('HEAD')).toBe(onVictim.length);
    expect(store.state).toBe('degraded');
    const timeoutsBefore = store.health().timeouts;
    // Its breaker is open: the next batches skip it at once, without a timeout.
    for (let i = 0; i < 3; i++) {
      s3.resetCounts();
      expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
      expect(s3.count('HEAD')).toBe(onVictim.length);
    }
    expect(store.health().timeouts).toBe(timeoutsBefore);

    const status = await cacheStatus(store, cluster.url, { pings: 1 });
    expect(status.kind).toBe('cluster');
    expect(status.state).toBe('degraded');
    expect(status.reason).toMatch(new RegExp(`1 of 3 masters down \\(${victim}: .*backend`));
    expect(status.nodes.map((n) => [n.address, n.state]).sort()).toEqual(
      cluster.nodes
        .map((n) => [`127.0.0.1:${n.port}`, n.port === node.port ? 'down' : 'up'])
        .sort(),
    );
    expect(status.nodes.reduce((n, m) => n + m.slots, 0)).toBe(16384);
    expect(status.nodes.find((n) => n.address === victim)!.keys).toBeNull();
    const othersKeys = status.nodes
      .filter((n) => n.address !== victim)
      .reduce((n, m) => n + (m.keys ?? 0), 0);
    expect(othersKeys).toBe(150 - onVictim.length);

    // Back (empty: no persistence): its breaker closes by itself, the backend answers for its
    // keys once more and they are written back; then nothing goes to the backend.
    await node.restart();
    await cluster.waitOk();
    await until(() => store.state === 'up');
    s3.resetCounts();
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect(s3.count('HEAD')).toBe(onVictim.length);
    await store.idle();
    s3.resetCounts();
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect(s3.totalRequests).toBe(0);
  });

  it('one master hung (SIGSTOP): after its first timeouts its keys go to the backend at once, batch after batch, and it is back when it resumes', async () => {
    const store = await cachedOverS3('one-hung');
    const objects = Array.from({ length: 300 }, () => object(100));
    await mapLimit(objects, 16, (o) => store.put(o.key, o.data));
    // Every key cached before the master hangs (a write-through that timed out on a loaded
    // machine would leave a key out, and its check would go to the backend).
    const writer = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    disposers.push(async () => writer.disconnect());
    await Promise.all(objects.map((o) => writer.set(cacheKey('one-hung', o.hash), '1')));
    const { keys } = store.internals();
    const victim = keys.addressOf(objects[0]!.hash)!;
    const onVictim = new Set(
      objects.filter((o) => keys.addressOf(o.hash) === victim).map((o) => o.key),
    );
    const node = cluster.nodes.find((n) => n.port === portOf(victim))!;
    // A push's existence checks: batch after batch of a few chunks, several in flight.
    const batches = Array.from({ length: 30 }, (_, i) =>
      objects.slice(i * 10, i * 10 + 10).map((o) => o.key),
    );
    const check = async (keys: string[]) =>
      expect(await store.hasMany(keys)).toEqual(keys.map(() => true));

    // A healthy master may miss a timeout too on a loaded machine: the keys of that command (at
    // most a batch's 10) then go to the backend as well. Unanswered commands are counted per
    // master, so the checks stay exact.
    const masters = [...new Set(objects.map((o) => keys.addressOf(o.hash)!))];
    const timeoutsOf = (address: string) => store.internals().guard(address).counters.timeouts;
    const othersUnanswered = () =>
      masters
        .filter((a) => a !== victim)
        .reduce(
          (n, a) => n + store.internals().guard(a).counters.fallbacks,
          store.internals().breaker.counters.fallbacks,
        );
    const expectHeads = (onVictimKeys: number, othersBefore: number) => {
      const others = othersUnanswered() - othersBefore;
      const heads = s3.count('HEAD');
      if (others === 0) expect(heads).toBe(onVictimKeys);
      else {
        expect(heads).toBeGreaterThanOrEqual(onVictimKeys);
        expect(heads).toBeLessThanOrEqual(onVictimKeys + 10 * others);
      }
    };

    node.pause();
    s3.resetCounts();
    let others = othersUnanswered();
    for (let i = 0; i < batches.length; i += 3)
      await Promise.all(batches.slice(i, i + 3).map(check));
    // The first batches waited for the master's timeout; once a PING went unanswered too, its
    // breaker opened and every later batch skipped it without waiting. A timeout per batch
    // would be 30 of them.
    const timeouts = timeoutsOf(victim);
    expect(timeouts).toBeGreaterThan(0);
    // (6 on an idle machine, 10 at load 14: a loaded machine stretches the PING's wait, and the
    // batches sent meanwhile wait too; never one a batch, and none once the breaker is open.)
    expect(timeouts).toBeLessThan(batches.length / 2);
    expect(store.internals().guard(victim).state).toBe('down');
    // Only its keys went to the backend (each once), the other masters answered for theirs.
    expectHeads(onVictim.size, others);
    s3.resetCounts();
    others = othersUnanswered();
    for (const batch of batches) await check(batch);
    expect(timeoutsOf(victim)).toBe(timeouts);
    expectHeads(onVictim.size, others);

    // Resumed, with its keys (a hang loses nothing): its breaker closes by itself and Redis
    // answers for every key again.
    node.resume();
    await cluster.waitOk();
    await until(() => store.internals().guard(victim).state !== 'down');
    s3.resetCounts();
    const victimBefore = timeoutsOf(victim);
    others = othersUnanswered();
    for (const batch of batches) await check(batch);
    // (none on a quiet machine; a timeout under load sends at most its batch's keys)
    const late = timeoutsOf(victim) - victimBefore + othersUnanswered() - others;
    expect(s3.totalRequests).toBeLessThanOrEqual(10 * late);
  });

  it('a master killed during a push: the push succeeds and every version restores exactly', async () => {
    const dir = join(work.path, 'push');
    await mkdir(dir, { recursive: true });
    const base = seededBytes(11, 6 * 1024 * 1024);
    const tuned = Buffer.from(base);
    for (let at = 0; at < tuned.length; at += 512 * 1024) tuned.fill(7, at, at + 4096);
    await mkdir(join(dir, 'v1'));
    await mkdir(join(dir, 'v2'));
    await writeFile(join(dir, 'v1', 'model.bin'), base);
    await writeFile(join(dir, 'v2', 'model.bin'), tuned);
    const service = (redisUrl: string) => {
      const s = new Service({
        repository: `s3://${s3.bucket}/cluster-push`,
        redisUrl,
        s3: s3Options(s3),
        mode: 'cli',
        workers: 2,
      });
      disposers.push(() => s.close());
      return s;
    };
    const first = service(cluster.url);
    await first.push({ model: 'm', paths: [join(dir, 'v1')] });
    await first.close();

    s3.faults.latencyMs = 5;
    const second = service(cluster.url);
    let killed = false;
    const pushed = await second.push({
      model: 'm',
      paths: [join(dir, 'v2')],
      onProgress: () => {
        if (!killed) {
          killed = true;
          void cluster.nodes[1]!.kill();
        }
      },
    });
    expect(killed).toBe(true);
    expect(pushed.number).toBe(2);

    for (const [version, bytes] of [
      ['m@v1', base],
      ['m@v2', tuned],
    ] as const) {
      const to = join(dir, `restore-${version}`);
      await second.pull(version, to);
      expect((await readFile(join(to, 'model.bin'))).equals(bytes)).toBe(true);
    }
  });

  it('a master hung (SIGSTOP) during a push: the push succeeds, every version restores exactly, and the master is back when it resumes', async () => {
    const dir = join(work.path, 'push-hung');
    await mkdir(join(dir, 'v1'), { recursive: true });
    await mkdir(join(dir, 'v2'));
    const base = seededBytes(12, 6 * 1024 * 1024);
    const tuned = Buffer.from(base);
    for (let at = 0; at < tuned.length; at += 512 * 1024) tuned.fill(9, at, at + 4096);
    await writeFile(join(dir, 'v1', 'model.bin'), base);
    await writeFile(join(dir, 'v2', 'model.bin'), tuned);
    const service = () => {
      const s = new Service({
        repository: `s3://${s3.bucket}/cluster-push-hung`,
        redisUrl: cluster.url,
        s3: s3Options(s3),
        mode: 'cli',
        workers: 2,
      });
      disposers.push(() => s.close());
      return s;
    };
    const first = service();
    await first.push({ model: 'm', paths: [join(dir, 'v1')] });
    await first.close();

    s3.faults.latencyMs = 5;
    const second = service();
    const hung = cluster.nodes[2]!;
    let paused = false;
    const pushed = await second.push({
      model: 'm',
      paths: [join(dir, 'v2')],
      onProgress: () => {
        if (!paused) {
          paused = true;
          hung.pause();
        }
      },
    });
    expect(paused).toBe(true);
    expect(pushed.number).toBe(2);
    const status = await second.cacheStatus();
    expect(status.state).toBe('degraded');
    expect(status.nodes.find((n) => n.address.endsWith(`:${hung.port}`))!.state).toBe('down');
    // A format 3 push asks Redis about few objects (the index answers for the rest): the
    // per-batch bound is the test above; here the timeouts include the status's own PINGs.
    expect(status.timeouts).toBeLessThanOrEqual(10);
    for (const [version, bytes] of [
      ['m@v1', base],
      ['m@v2', tuned],
    ] as const) {
      const to = join(dir, `restore-${version}`);
      await second.pull(version, to);
      expect((await readFile(join(to, 'model.bin'))).equals(bytes)).toBe(true);
    }

    hung.resume();
    await cluster.waitOk();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const after = await second.cacheStatus();
      if (after.nodes.every((n) => n.state !== 'down')) break;
      if (Date.now() > deadline) throw new Error(`the master did not come back: ${after.reason}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('a cluster URL whose nodes do not answer, or that names one server not in cluster mode, says which in the status', async () => {
    const env = { TV_REPO: join(work.path, 'status-wrong') };
    expect((await tv(['init'], env)).code).toBe(0);
    const nobody = await tv(['cache', 'status'], {
      ...env,
      TV_REDIS_URL: 'redis+cluster://127.0.0.1:1,127.0.0.1:2',
    });
    expect(nobody.code).toBe(1);
    expect(nobody.stdout).toMatch(
      /^cache: down \(redis\+cluster:\/\/127\.0\.0\.1:1,127\.0\.0\.1:2\): no node of the Redis Cluster at 127\.0\.0\.1:1,127\.0\.0\.1:2 answered: check the addresses and that the servers run$/m,
    );
    const single = await RedisServer.start();
    disposers.push(() => single.dispose());
    const notCluster = await tv(['cache', 'status'], {
      ...env,
      TV_REDIS_URL: `redis+cluster://127.0.0.1:${single.port}`,
    });
    expect(notCluster.code).toBe(1);
    expect(notCluster.stdout).toMatch(
      /: Redis at 127\.0\.0\.1:\d+ is not a Redis Cluster: use redis:\/\/host:port for one server$/m,
    );
  });

  it('tv cache status names the cluster and each master, with a password given in the URL redacted', async () => {
    const src = join(work.path, 'status-src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'weights.bin'), seededBytes(21, 1_000_000));
    const url = cluster.url.replace('redis+cluster://', 'redis+cluster://:unused-secret@');
    const env = { TV_REPO: join(work.path, 'status-repo'), TV_REDIS_URL: url };
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const text = await tv(['cache', 'status'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^cache: (up|degraded) \(redis\+cluster:\/\/\*\*\*@127\.0\.0\.1:\d+,.*, a Redis Cluster of 3 masters\)/,
    );
    expect(
      text.stdout.match(
        /^ {2}master 127\.0\.0\.1:\d+ +up +PING [\d.]+ ms, [\d,]+ slots, \d+ keys of this repository/gm,
      ),
    ).toHaveLength(3);
    expect(text.stdout + text.stderr).not.toContain('unused-secret');
    const status = json((await tv(['cache', 'status', '--json'], env)).stdout) as {
      kind: string;
      nodes: { state: string; slots: number; keys: number }[];
      shared: { keys: { count: number } };
    };
    expect(status.kind).toBe('cluster');
    expect(status.nodes.map((n) => n.state)).toEqual(['up', 'up', 'up']);
    expect(status.nodes.reduce((n, m) => n + m.keys, 0)).toBe(status.shared.keys.count);
    expect(status.shared.keys.count).toBeGreaterThan(0);
  });

  it("a failover (a replica takes over its master's slots) is shown with its time, and the cache keeps answering", async () => {
    const store = await cachedOverS3('failover');
    const objects = Array.from({ length: 60 }, () => object(50));
    for (const o of objects) await store.put(o.key, o.data);
    const replica = await cluster.addReplica(0);
    const before = Date.now();
    const answer = await master(replica.port).call('CLUSTER', 'FAILOVER');
    expect(answer).toBe('OK');
    await until(() => store.internals().connection.failovers.length > 0, 15_000);
    const status = await cacheStatus(store, cluster.url, { pings: 1 });
    expect(status.failovers).toEqual([
      {
        at: expect.any(String),
        from: `127.0.0.1:${cluster.nodes[0]!.port}`,
        to: `127.0.0.1:${replica.port}`,
        slots: status.nodes.find((n) => n.address === `127.0.0.1:${replica.port}`)!.slots,
      },
    ]);
    expect(Date.parse(status.failovers[0]!.at)).toBeGreaterThanOrEqual(before);
    expect(status.nodes.map((n) => n.address)).toContain(`127.0.0.1:${replica.port}`);
    expect(status.nodes.map((n) => n.address)).not.toContain(`127.0.0.1:${cluster.nodes[0]!.port}`);
    // The replica had the keys: every object is still a hit.
    s3.resetCounts();
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect(s3.totalRequests).toBe(0);
  });

  const tlsTest = tlsUnsupported ? it.skip : it;
  tlsTest(
    `a cluster over TLS (rediss+cluster://, a self-signed certificate the user trusts with NODE_EXTRA_CA_CERTS): a push writes its keys through every master, and status says so${tlsUnsupported ? ` (skipped: ${tlsUnsupported})` : ''}`,
    async () => {
      const dir = join(work.path, 'tls');
      await mkdir(join(dir, 'src'), { recursive: true });
      const cert = await selfSignedCertificate(dir);
      const tlsCluster = await RedisCluster.start(3, { tls: cert });
      disposers.push(() => tlsCluster.dispose());
      expect(tlsCluster.url).toMatch(/^rediss\+cluster:\/\//);
      await writeFile(join(dir, 'src', 'weights.bin'), seededBytes(31, 1_000_000));
      const env = {
        TV_REPO: join(dir, 'repo'),
        TV_REDIS_URL: tlsCluster.url,
        NODE_EXTRA_CA_CERTS: cert.cert,
      };
      const pushed = await tv(['push', 'm', join(dir, 'src')], env);
      expect(pushed.code).toBe(0);
      // Three TLS handshakes and the slot map may take longer than the start-up budget on a
      // loaded machine (a warning, then caching resumes): the push's claims are written anyway.
      const status = json((await tv(['cache', 'status', '--json'], env)).stdout) as {
        state: string;
        kind: string;
        redis: string;
        nodes: { state: string; keys: number }[];
        shared: { keys: { count: number } };
      };
      expect(status).toMatchObject({ state: 'up', kind: 'cluster' });
      expect(status.redis).toMatch(/^rediss\+cluster:\/\/127\.0\.0\.1:/);
      expect(status.nodes.map((n) => n.state)).toEqual(['up', 'up', 'up']);
      expect(status.nodes.every((n) => n.keys > 0)).toBe(true);

      // Without trusting the certificate, the cache is down and says why.
      const untrusted = await tv(['cache', 'status'], { ...env, NODE_EXTRA_CA_CERTS: '' });
      expect(untrusted.code).toBe(1);
      // (ioredis does not pass on the certificate error of a cluster's node: the reason names it
      // as the thing to check.)
      expect(untrusted.stdout).toMatch(
        /^cache: down .*: no node of the Redis Cluster at 127\.0\.0\.1:\d+,.* answered over TLS: check .*\(NODE_EXTRA_CA_CERTS/m,
      );

      // One server over TLS (rediss://) names the certificate error itself.
      const single = await RedisServer.start([], { tls: cert });
      disposers.push(() => single.dispose());
      const one = { ...env, TV_REDIS_URL: `rediss://127.0.0.1:${single.port}` };
      const refused = await tv(['cache', 'status'], { ...one, NODE_EXTRA_CA_CERTS: '' });
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(
        /^cache: down .*: Redis at 127\.0\.0\.1:\d+ presented a TLS certificate this machine does not trust \(DEPTH_ZERO_SELF_SIGNED_CERT\): add its CA certificate to NODE_EXTRA_CA_CERTS/m,
      );
      expect((await tv(['cache', 'status'], one)).stdout).toMatch(/^cache: up \(rediss:\/\//);
    },
  );
});

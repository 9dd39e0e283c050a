import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKey } from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { cachedStore, diskStore, warningLogger } from './stores';

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  redis?.resume();
  await redis?.dispose();
});

/** Keeps this thread busy, as a loaded box or a long synchronous task does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Processes that keep every core busy until stopped. */
function cpuHogs(n: number): ChildProcess[] {
  return Array.from({ length: n }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
}

describe('a healthy Redis on a loaded two-core box', () => {
  it('stays up: replies held up by a blocked event loop, or one slow reply, do not open the circuit', async () => {
    const { logger, warnings } = warningLogger();
    const disk = await diskStore();
    const cached = await cachedStore(disk.store, redis.url, { logger, probeIntervalMs: 100 });
    const store = cached.store;
    const hogs = cpuHogs(2);
    try {
      const objects = Array.from({ length: 50 }, () => {
        const data = randomBytes(100);
        return { data, key: objectKey(createHash('sha256').update(data).digest('hex')) };
      });
      for (const o of objects) await store.put(o.key, o.data);
      await store.flush(); // a folder's objects are claimed once durable
      const keys = objects.map((o) => o.key);
      for (let i = 0; i < 100; i++) {
        const asked = store.hasMany(keys);
        // The thread stalls while the reply is on its way: 150 ms most times, 700 ms now and then.
        if (i % 5 === 0) busy(i % 25 === 0 ? 700 : 150);
        expect(await asked).toEqual(keys.map(() => true));
      }
      // Redis itself stalls once, longer than a command's timeout.
      redis.pause();
      setTimeout(() => redis.resume(), 800);
      await store.hasMany(keys);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await store.hasMany(keys)).toEqual(keys.map(() => true));
      expect(warnings).toEqual([]);
      expect(store.state).not.toBe('down');
      expect(store.health().timeouts).toBeLessThanOrEqual(1);
    } finally {
      for (const hog of hogs) hog.kill();
      redis.resume();
      await cached.dispose();
      await disk.dispose();
    }
  });
});

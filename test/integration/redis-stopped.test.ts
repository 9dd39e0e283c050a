import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../electron/engine/storage/redis';
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

describe('Redis stopped while a command waits for its answer', () => {
  it("is said as a closed connection at that address, not as ioredis' retry-limit option", async () => {
    const { logger, warnings } = warningLogger();
    const disk = await diskStore();
    const cached = await cachedStore(disk.store, redis.url, { logger, probeIntervalMs: 60_000 });
    try {
      const data = randomBytes(100);
      const key = objectKey(createHash('sha256').update(data).digest('hex'));
      await cached.store.put(key, data);
      await cached.store.flush();
      // The command is sent and Redis holds it unanswered (frozen); then Redis goes away, as a
      // stopped or crashed server does, with the command still waiting.
      redis.pause();
      const answer = cached.store.has(key);
      await new Promise((r) => setTimeout(r, 100));
      await redis.kill();
      expect(await answer).toBe(true); // the backend answered instead
      const address = `127.0.0.1:${redis.port}`;
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        new RegExp(
          `^Redis cache unavailable \\(Redis at ${address.replace(/\./g, '\\.')} closed the connection`,
        ),
      );
      expect(warnings[0]).not.toMatch(/maxRetriesPerRequest|max retries/i);
      expect(cached.store.health().lastError).toMatch(/closed the connection/);
    } finally {
      await cached.dispose();
      await disk.dispose();
      await redis.restart();
    }
  });

  it('a command sent after it went away, before reconnecting, is said the same way', async () => {
    const connection = new RedisConnection(redis.url);
    try {
      expect(await connection.waitReady(2_000)).toBe(true);
      await redis.kill();
      const err = await connection.client.get('any').catch((e: unknown) => e);
      expect(connection.describe(err)).toBe(
        `Redis at 127.0.0.1:${redis.port} closed the connection: the server stopped, restarted or dropped this client`,
      );
    } finally {
      connection.disconnect();
      await redis.restart();
    }
  });
});

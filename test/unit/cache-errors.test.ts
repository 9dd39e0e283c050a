import { describe, expect, it } from 'vitest';
import { explainCacheError } from '../../renderer/src/cache-errors';

describe('cache errors in words a user can act on', () => {
  const redis = 'redis://cache.internal:6379';
  it('names what to check for the errors ioredis reports', () => {
    expect(explainCacheError('connect ECONNREFUSED 127.0.0.1:6379', redis)).toMatch(
      /^Nothing accepts connections at redis:\/\/cache\.internal:6379: check that redis-server is running/,
    );
    expect(explainCacheError('getaddrinfo ENOTFOUND cache.internal', redis)).toMatch(
      /host .* is not known/,
    );
    expect(explainCacheError('Command timed out', redis)).toMatch(/did not answer in time/);
    expect(explainCacheError('WRONGPASS invalid username-password pair', redis)).toMatch(
      /refused the password/,
    );
    expect(
      explainCacheError("OOM command not allowed when used memory > 'maxmemory'", redis),
    ).toMatch(/out of memory/);
    expect(explainCacheError('something new', null)).toMatch(
      /^The cache at the Redis server failed/,
    );
  });

  it("understands the engine's own sentences", () => {
    expect(
      explainCacheError('Redis at cache.internal:6379 refused the connection', redis, 'standalone'),
    ).toMatch(/^Nothing accepts connections at redis:\/\/cache\.internal:6379/);
    expect(
      explainCacheError(
        'Redis at cache.internal:6379 needs a password: give it in the URL',
        redis,
        'standalone',
      ),
    ).toMatch(/needs a password: put it in TV_REDIS_URL/);
  });

  it('speaks of the cluster and its masters on a Redis Cluster', () => {
    const cluster = 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000';
    const explain = (error: string) => explainCacheError(error, cluster, 'cluster');
    expect(explain('Redis at 10.0.0.2:7000 refused the connection')).toBe(
      'Master 10.0.0.2:7000 of the Redis Cluster at 10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000 is not answering: the storage backend answers for its keys, the other masters keep serving theirs, and caching of its keys resumes by itself when it is back.',
    );
    expect(explain('Redis at 10.0.0.3:7000 did not answer within 500 ms')).toMatch(
      /^Master 10\.0\.0\.3:7000 of the Redis Cluster .* is not answering/,
    );
    expect(
      explain(
        'no node of the Redis Cluster at 10.0.0.1:7000,10.0.0.2:7000 answered: check the addresses and that the servers run',
      ),
    ).toMatch(
      /^No node of the Redis Cluster at 10\.0\.0\.1:7000,.* answered: check that the servers run/,
    );
    expect(
      explain(
        'no node of the Redis Cluster at 10.0.0.1:7000 answered over TLS: check that the servers run with TLS',
      ),
    ).toMatch(/^No master of the Redis Cluster .* answered over TLS: .*NODE_EXTRA_CA_CERTS/);
    expect(explain('Redis at 10.0.0.1:7000: the cluster is down (The cluster is down)')).toMatch(
      /^The Redis Cluster at .* says it is down/,
    );
    expect(
      explain(
        'Redis at 10.0.0.1:7000 is not a Redis Cluster: use redis://host:port for one server',
      ),
    ).toMatch(/is not in cluster mode/);
    // What is not particular to a cluster reads as for one server, naming the cluster.
    expect(explain('Redis at 10.0.0.1:7000: OOM command not allowed')).toMatch(
      /^redis\+cluster:\/\/10\.0\.0\.1:7000,.* is out of memory/,
    );
    // The kind may be unknown (no status yet): the URL tells.
    expect(explainCacheError('Failed to refresh slots cache.', cluster, null)).toMatch(
      /^No node of the Redis Cluster/,
    );
  });
});

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
});

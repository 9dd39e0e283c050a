import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  const cache = program.command('cache').description('the Redis existence cache');
  cache
    .command('status')
    .description('cache state, latency and counters')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const status = await service.cacheStatus();
        emit(opts.json, status, () =>
          status.state === 'disabled'
            ? 'cache: disabled (no Redis configured: --redis or TV_REDIS_URL)'
            : [
                `cache: ${status.state} (${status.redis})`,
                `  latency p50 ${status.latencyMs?.p50 ?? '-'} ms, p99 ${status.latencyMs?.p99 ?? '-'} ms`,
                `  hits ${status.hits}, misses ${status.misses}, backfills ${status.backfills}, fallbacks ${status.fallbacks}, backend calls avoided ${status.backendCallsAvoided}`,
                ...(status.lastError ? [`  last error: ${status.lastError}`] : []),
              ].join('\n'),
        );
      });
    });
}

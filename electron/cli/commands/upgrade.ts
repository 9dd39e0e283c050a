import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('upgrade')
    .description(
      'move a repository of format 1 or 2 to format 3 (chunks in packs, with an index); older clients cannot open it afterwards',
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const r = await service.upgrade();
        emit(opts.json, r, () =>
          r.from === r.to
            ? `${r.location} is at format ${r.to} already: nothing to do`
            : `Upgraded ${r.location} from format ${r.from} to ${r.to}: new chunks go to packs; the ${r.looseObjects} objects stored one by one (and any packs of format 2) stay and are read as before; TensorVault versions before format ${r.to} can no longer open it`,
        );
      });
    });
}

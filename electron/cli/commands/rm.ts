import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('rm')
    .description(
      'remove a version (MODEL@VERSION) or a whole model (MODEL); the data stays until gc',
    )
    .argument('<selector>', 'MODEL@VERSION or MODEL')
    .option('--json', 'print one JSON object')
    .action(async (selector: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const r = await service.remove(selector);
        emit(opts.json, r, () => {
          const lines = [
            `removed ${r.model} ${r.removed.map((v) => v.version).join(', ')} (run tv gc to reclaim space)`,
          ];
          // A whole model's tags go with it; a version's tags stay, naming a removed version.
          if (selector.includes('@') && r.tagsLeft.length > 0) {
            const many = r.tagsLeft.length > 1;
            const names = r.tagsLeft.map((t) => t.name).join(', ');
            lines.push(
              `  ${many ? 'tags' : 'tag'} ${names} still ${many ? 'point' : 'points'} at ${r.tagsLeft[0]?.version}, which is removed: move ${many ? 'them' : 'it'} (tv tag ${r.model}@vN ${many ? 'NAME' : names}) or delete ${many ? 'them' : 'it'} (tv tag --delete ${r.model} ${many ? 'NAME' : names})`,
            );
          }
          return lines.join('\n');
        });
      });
    });
}

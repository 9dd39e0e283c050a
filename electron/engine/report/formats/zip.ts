import { Readable } from 'node:stream';
import { type ByteSource, LayoutError } from './model-format';

/** One member of a zip archive, located in the file without reading its data. */
export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Where the member's (compressed) bytes start in the archive. */
  dataStart: number;
}

/**
 * Lists a zip archive through ranged reads (yauzl reads the end record and the central
 * directory through this reader, then each wanted member's local header), never the whole file.
 */
export async function listZip(
  source: ByteSource,
  wanted: (name: string) => boolean,
): Promise<ZipMember[]> {
  // yauzl is CommonJS: bundled, its exports are on the default export only.
  const loaded: typeof import('yauzl') & { default?: typeof import('yauzl') } =
    await import('yauzl');
  const yauzl = loaded.default ?? loaded;
  class Reader extends yauzl.RandomAccessReader {
    override _readStreamForRange(start: number, end: number): Readable {
      return Readable.from(
        (async function* () {
          yield Buffer.from(await source.read(start, end));
        })(),
      );
    }
  }
  try {
    const zip = await yauzl.fromRandomAccessReaderPromise(new Reader(), source.size, {
      autoClose: false,
      lazyEntries: true,
    });
    try {
      if (zip.entryCount * 46 > source.size)
        throw new LayoutError(
          `zip directory says ${zip.entryCount} members, more than the file can hold`,
        );
      const members: ZipMember[] = [];
      for await (const entry of zip.eachEntry()) {
        if (!wanted(entry.fileName)) continue;
        const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
        if (fileDataStart + entry.compressedSize > source.size)
          throw new LayoutError(`zip member ${entry.fileName} runs past the end of the file`);
        members.push({
          name: entry.fileName,
          method: entry.compressionMethod,
          compressedSize: entry.compressedSize,
          uncompressedSize: entry.uncompressedSize,
          dataStart: fileDataStart,
        });
      }
      return members;
    } finally {
      zip.close();
    }
  } catch (err) {
    if (err instanceof LayoutError) throw err;
    throw new LayoutError(`not a readable zip archive (${(err as Error).message})`);
  }
}

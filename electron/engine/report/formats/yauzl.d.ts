// The part of yauzl 3 (a zip reader that reads through a random-access reader) this project uses.
declare module 'yauzl' {
  import type { Readable } from 'node:stream';

  export class RandomAccessReader {
    _readStreamForRange(start: number, end: number): Readable;
  }

  export interface Entry {
    fileName: string;
    compressionMethod: number;
    compressedSize: number;
    uncompressedSize: number;
    relativeOffsetOfLocalHeader: number;
  }

  export interface ZipFile {
    entryCount: number;
    eachEntry(): AsyncIterable<Entry>;
    readLocalFileHeaderPromise(
      entry: Entry,
      options: { minimal: true },
    ): Promise<{ fileDataStart: number }>;
    close(): void;
  }

  export function fromRandomAccessReaderPromise(
    reader: RandomAccessReader,
    totalSize: number,
    options?: {
      autoClose?: boolean;
      lazyEntries?: boolean;
      strictFileNames?: boolean;
      validateEntrySizes?: boolean;
    },
  ): Promise<ZipFile>;
}

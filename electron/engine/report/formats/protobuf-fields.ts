import { Cursor } from './cursor';
import { LayoutError } from './model-format';

/**
 * Walks the fields of a protobuf message lying at [start, end) of a file without reading their
 * values unless asked: the ONNX reader skips tensor data this way and hands the small fields to
 * the schema's decoder. Each field consumes at least one byte, so a walk ends within its range.
 */
export interface Field {
  number: number;
  wireType: number;
  /** Where the field's tag starts, where its value starts, where the field ends. */
  start: number;
  valueStart: number;
  end: number;
}

async function varint(c: Cursor, end: number): Promise<number> {
  if (!c.has(10)) await c.need(Math.min(10, end - c.pos), end);
  let value = 0;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= end) break;
    const byte = c.u8();
    if (i < 7) value += (byte & 0x7f) * 2 ** (7 * i);
    else if (byte & 0x7f)
      throw new LayoutError(`ONNX varint at byte ${c.pos - i - 1} is too large`);
    if ((byte & 0x80) === 0) return value;
  }
  throw new LayoutError(`ONNX varint at byte ${c.pos} is not terminated`);
}

/** Visits each field of the message at [start, end); the cursor ends at `end`. */
export async function walkFields(
  c: Cursor,
  start: number,
  end: number,
  visit: (field: Field) => Promise<void> | void,
): Promise<void> {
  c.pos = start;
  while (c.pos < end) {
    const fieldStart = c.pos;
    c.countValues(1);
    const tag = await varint(c, end);
    const number = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (number === 0) throw new LayoutError(`ONNX field number 0 at byte ${fieldStart}`);
    let valueStart = c.pos;
    if (wireType === 0) await varint(c, end);
    else if (wireType === 1) c.skip(8, end);
    else if (wireType === 5) c.skip(4, end);
    else if (wireType === 2) {
      const length = await varint(c, end);
      valueStart = c.pos;
      c.skip(length, end);
    } else
      throw new LayoutError(`ONNX field ${number} at byte ${fieldStart} has wire type ${wireType}`);
    const fieldEnd = c.pos;
    await visit({ number, wireType, start: fieldStart, valueStart, end: fieldEnd });
    c.pos = fieldEnd;
  }
}

/** The bytes of the given fields, back to back: a message of only those fields, for the decoder. */
export async function fieldBytes(c: Cursor, fields: Field[]): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for (const f of fields) {
    c.pos = f.start;
    parts.push(Buffer.from(await c.take(f.end - f.start, f.end)));
  }
  return Buffer.concat(parts);
}

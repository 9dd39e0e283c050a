import { count, LayoutError, MAX_VALUES } from './model-format';

/**
 * A restricted pickle reader for PyTorch state dicts. It understands the opcodes torch.save
 * writes (protocols 2 to 5) and a short list of globals, each turned into plain data here:
 * OrderedDict, the tensor and parameter rebuild functions, storage types and a few harmless
 * helpers. It never imports or calls anything: any other global, or an opcode outside the list,
 * ends the read with "not readable as a state dict", naming what it met.
 */

export class PickleError extends LayoutError {
  override name = 'PickleError';
}

/** A storage of a checkpoint: data/<key> in the archive, `numel` elements of `storageType`. */
export interface StorageRef {
  kind: 'storage';
  storageType: string;
  key: string;
  numel: number;
}

export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  /** In elements. */
  offset: number;
  size: number[];
  stride: number[];
}

interface Global {
  kind: 'global';
  name: string;
}

export type PickleValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | StorageRef
  | TensorRef
  | Global;

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const STORAGE_TYPES = new Set(
  [
    'Double',
    'Float',
    'Half',
    'BFloat16',
    'Long',
    'Int',
    'Short',
    'Char',
    'Byte',
    'Bool',
    'ComplexFloat',
    'ComplexDouble',
    'QInt8',
    'QUInt8',
    'QInt32',
    'QUInt4x2',
    'QUInt2x4',
    'Float8_e4m3fn',
    'Float8_e5m2',
    'Float8_e4m3fnuz',
    'Float8_e5m2fnuz',
    'UInt16',
    'UInt32',
    'UInt64',
    'Untyped',
  ].map((t) => `torch.${t}Storage`),
);

/** The globals a state dict may name, and what each becomes when called. */
const CALLABLE: Record<string, (args: PickleValue[]) => PickleValue> = {
  'collections.OrderedDict': () => new Map(),
  'torch._utils._rebuild_tensor_v2': (a) => tensor(a),
  'torch._utils._rebuild_tensor': (a) => tensor(a),
  'torch._utils._rebuild_parameter': (a) => a[0] as PickleValue,
  'torch._utils._rebuild_parameter_with_state': (a) => a[0] as PickleValue,
  'torch._tensor._rebuild_from_type_v2': (a) => call(a[0] as PickleValue, asArray(a[2])),
  '_codecs.encode': (a) => Buffer.from(String(a[0]), 'latin1'),
  'torch.device': (a) => a.map(String).join(':'),
};

const asArray = (v: PickleValue | undefined): PickleValue[] => {
  if (!Array.isArray(v))
    throw new PickleError('not readable as a state dict: a call without an argument tuple');
  return v;
};

const int = (v: PickleValue | undefined, what: string): number => {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new PickleError(`not readable as a state dict: tensor ${what} is not a count`);
  return n;
};

function tensor(args: PickleValue[]): TensorRef {
  const storage = args[0] as StorageRef;
  if (storage?.kind !== 'storage')
    throw new PickleError('not readable as a state dict: a tensor without a storage');
  return {
    kind: 'tensor',
    storage,
    offset: int(args[1], 'offset'),
    size: asArray(args[2]).map((d) => int(d, 'size')),
    stride: asArray(args[3]).map((d) => int(d, 'stride')),
  };
}

function call(fn: PickleValue, args: PickleValue[]): PickleValue {
  const g = fn as Global;
  const impl = g?.kind === 'global' ? CALLABLE[g.name] : undefined;
  if (!impl)
    throw new PickleError(
      `not readable as a state dict: it calls ${g?.kind === 'global' ? g.name : 'a non-global'}`,
    );
  return impl(args);
}

function persistentLoad(pid: PickleValue): StorageRef {
  const t = pid as PickleValue[];
  const type = (t?.[1] as Global | undefined)?.name;
  if (
    !Array.isArray(t) ||
    t[0] !== 'storage' ||
    !type ||
    !STORAGE_TYPES.has(type) ||
    typeof t[2] !== 'string'
  )
    throw new PickleError(
      'not readable as a state dict: a persistent id that is not a tensor storage',
    );
  return {
    kind: 'storage',
    storageType: type.slice('torch.'.length),
    key: t[2],
    numel: int(t[4], 'storage size'),
  };
}

/** Reads the pickle `data` (a torch.save data.pkl) into plain values; never executes anything. */
export function readPickle(data: Uint8Array): PickleValue {
  const r = new PickleReader(Buffer.from(data.buffer, data.byteOffset, data.length));
  for (;;) {
    const op = r.u8();
    if (op === 0x2e) return r.pop(); // STOP
    const handler = OPCODES[op];
    if (!handler)
      throw new PickleError(
        `not readable as a state dict: pickle opcode 0x${op.toString(16)} at byte ${r.pos - 1}`,
      );
    handler(r);
  }
}

/** The stream, the stack, its marks and the memo; each opcode below works on these. */
class PickleReader {
  pos = 0;
  private stack: StackItem[] = [];
  private marks: number[] = [];
  readonly memo = new Map<number, PickleValue>();
  private built = 0;

  constructor(private readonly b: Buffer) {}

  private need(n: number): number {
    if (this.pos + n > this.b.length)
      throw new PickleError('pickle ends in the middle of an opcode');
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8 = () => this.b.readUInt8(this.need(1));
  u16 = () => this.b.readUInt16LE(this.need(2));
  u32 = () => this.b.readUInt32LE(this.need(4));
  i32 = () => this.b.readInt32LE(this.need(4));
  f64 = () => this.b.readDoubleBE(this.need(8));
  u64 = () => {
    const n = this.b.readBigUInt64LE(this.need(8));
    if (n > BigInt(this.b.length)) throw new PickleError('pickle length runs past its end');
    return Number(n);
  };
  raw = (n: number) => this.b.subarray(this.need(n), this.pos);
  line = () => {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError('pickle ends in the middle of a global name');
    const text = this.b.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return text;
  };

  pop(): PickleValue {
    if (this.stack.length === 0 || this.stack.at(-1) === MARK)
      throw new PickleError('pickle pops an empty stack');
    return this.stack.pop() as PickleValue;
  }
  top(): PickleValue {
    const v = this.stack.at(-1);
    if (v === undefined || v === MARK) throw new PickleError('pickle reads an empty stack');
    return v;
  }
  push(v: PickleValue) {
    if (++this.built > MAX_VALUES)
      throw new PickleError(
        `pickle builds more than ${count(MAX_VALUES)} values: not read further`,
      );
    this.stack.push(v);
  }
  mark() {
    this.marks.push(this.stack.length);
    this.stack.push(MARK);
  }
  popMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw new PickleError('pickle closes a mark it never opened');
    return this.stack.splice(mark).slice(1) as PickleValue[]; // without the MARK itself
  }
  memoGet(i: number): PickleValue {
    if (!this.memo.has(i)) throw new PickleError(`pickle reads memo ${i}, never written`);
    return this.memo.get(i) as PickleValue;
  }
}

function setItems(target: PickleValue, items: PickleValue[]) {
  if (!(target instanceof Map))
    throw new PickleError('not readable as a state dict: items set on a non-dict');
  for (let i = 0; i + 1 < items.length; i += 2)
    target.set(items[i] as PickleValue, items[i + 1] as PickleValue);
}

function appendItems(target: PickleValue, items: PickleValue[]) {
  if (!Array.isArray(target))
    throw new PickleError('not readable as a state dict: items appended to a non-list');
  target.push(...items);
}

function global(name: string): Global {
  if (!Object.hasOwn(CALLABLE, name) && !STORAGE_TYPES.has(name))
    throw new PickleError(`not readable as a state dict: the pickle names ${name}`);
  return { kind: 'global', name };
}

/** A little-endian two's-complement integer of `n` bytes (LONG1, LONG4). */
function long(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  let value = 0n;
  for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] as number);
  if ((bytes[n - 1] as number) & 0x80) value -= 1n << BigInt(8 * n);
  const safe = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
  return safe ? Number(value) : value;
}

type Op = (r: PickleReader) => void;
const value =
  (read: (r: PickleReader) => PickleValue): Op =>
  (r) =>
    r.push(read(r));

/** The opcodes torch.save writes, by byte, as the pickle module names them. Nothing else is read. */
const OPCODES: Record<number, Op> = {
  0x80: (r) => void r.u8(), // PROTO
  0x95: (r) => void r.u64(), // FRAME
  // Values
  0x7d: value(() => new Map()), // EMPTY_DICT
  0x5d: value(() => []), // EMPTY_LIST
  0x29: value(() => []), // EMPTY_TUPLE
  0x58: value((r) => r.raw(r.u32()).toString('utf8')), // BINUNICODE
  0x8c: value((r) => r.raw(r.u8()).toString('utf8')), // SHORT_BINUNICODE
  0x8d: value((r) => r.raw(r.u64()).toString('utf8')), // BINUNICODE8
  0x54: value((r) => r.raw(r.u32()).toString('latin1')), // BINSTRING
  0x55: value((r) => r.raw(r.u8()).toString('latin1')), // SHORT_BINSTRING
  0x42: value((r) => Buffer.from(r.raw(r.u32()))), // BINBYTES
  0x43: value((r) => Buffer.from(r.raw(r.u8()))), // SHORT_BINBYTES
  0x8e: value((r) => Buffer.from(r.raw(r.u64()))), // BINBYTES8
  0x4a: value((r) => r.i32()), // BININT
  0x4b: value((r) => r.u8()), // BININT1
  0x4d: value((r) => r.u16()), // BININT2
  0x8a: value((r) => long(r.raw(r.u8()))), // LONG1
  0x8b: value((r) => long(r.raw(r.u32()))), // LONG4
  0x47: value((r) => r.f64()), // BINFLOAT
  0x4e: value(() => null), // NONE
  0x88: value(() => true), // NEWTRUE
  0x89: value(() => false), // NEWFALSE
  // Containers
  0x28: (r) => r.mark(), // MARK
  0x74: value((r) => r.popMark()), // TUPLE
  0x6c: value((r) => r.popMark()), // LIST
  0x85: value((r) => [r.pop()]), // TUPLE1
  0x86: value((r) => [r.pop(), r.pop()].reverse()), // TUPLE2
  0x87: value((r) => [r.pop(), r.pop(), r.pop()].reverse()), // TUPLE3
  0x64: value((r) => {
    const m = new Map<PickleValue, PickleValue>();
    setItems(m, r.popMark());
    return m;
  }), // DICT
  0x61: (r) => appendItems(...topAfter(r, [r.pop()])), // APPEND
  0x65: (r) => appendItems(...topAfter(r, r.popMark())), // APPENDS
  0x73: (r) => setItems(...topAfter(r, [r.pop(), r.pop()].reverse())), // SETITEM
  0x75: (r) => setItems(...topAfter(r, r.popMark())), // SETITEMS
  // Globals and calls: only the allowed ones, turned into data
  0x63: value((r) => global(`${r.line()}.${r.line()}`)), // GLOBAL
  0x93: value((r) => {
    const name = r.pop();
    return global(`${String(r.pop())}.${String(name)}`);
  }), // STACK_GLOBAL
  0x52: value((r) => {
    const args = asArray(r.pop());
    return call(r.pop(), args);
  }), // REDUCE
  0x81: value((r) => {
    const args = asArray(r.pop());
    return call(r.pop(), args);
  }), // NEWOBJ
  0x62: (r) => void (r.pop(), r.top()), // BUILD: object state (OrderedDict._metadata) is not needed
  0x51: value((r) => persistentLoad(r.pop())), // BINPERSID
  // Memo and stack
  0x71: (r) => void r.memo.set(r.u8(), r.top()), // BINPUT
  0x72: (r) => void r.memo.set(r.u32(), r.top()), // LONG_BINPUT
  0x94: (r) => void r.memo.set(r.memo.size, r.top()), // MEMOIZE
  0x68: value((r) => r.memoGet(r.u8())), // BINGET
  0x6a: value((r) => r.memoGet(r.u32())), // LONG_BINGET
  0x30: (r) => void r.pop(), // POP
  0x31: (r) => void r.popMark(), // POP_MARK
  0x32: value((r) => r.top()), // DUP
};

/** The items, then the object below them they go into (read in that order: items come first). */
function topAfter(r: PickleReader, items: PickleValue[]): [PickleValue, PickleValue[]] {
  return [r.top(), items];
}

/**
 * The character vocabulary of the pretrained models: one token per printable ASCII character,
 * newline and tab, a document boundary and an "other" token for everything else.
 *
 * | id | meaning |
 * |---|---|
 * | 0 | document boundary (between documents, and the usual first token of a prompt) |
 * | 1 | tab |
 * | 2 | newline |
 * | 3 … 97 | ASCII 32 (space) … 126 (`~`) |
 * | 98 | any other character |
 */
export interface CharTokenizer {
  /** Number of token ids (99). */
  readonly vocabSize: number;
  /** The document-boundary token id (0). */
  readonly boundary: number;
  /** The id of characters outside the vocabulary (98). */
  readonly unknown: number;
  /**
   * Token ids of `text` (characters outside the vocabulary become `unknown`).
   *
   * @param text - any text
   */
  encode(text: string): number[];
  /**
   * Text of token ids: the boundary becomes `boundaryText` (default '\n\n'), `unknown` '?'.
   *
   * @param ids - token ids
   * @param opts - `{ boundaryText }` (default two newlines)
   */
  decode(ids: readonly number[], opts?: { boundaryText?: string }): string;
}

const BOUNDARY = 0;
const TAB = 1;
const NEWLINE = 2;
const FIRST_PRINTABLE = 3; // ASCII 32
const UNKNOWN = 98;

function encodeChar(code: number): number {
  if (code === 9) return TAB;
  if (code === 10) return NEWLINE;
  if (code >= 32 && code <= 126) return FIRST_PRINTABLE + code - 32;
  return UNKNOWN;
}

/**
 * The character tokenizer of the pretrained models (see the table above).
 *
 * @example
 * ```ts
 * import { charTokenizer } from '@kernel-attention/performer';
 * const ids = charTokenizer.encode('Hi!\n'); // [43, 76, 4, 2]
 * charTokenizer.decode(ids); // 'Hi!\n'
 * ```
 */
export const charTokenizer: CharTokenizer = {
  vocabSize: 99,
  boundary: BOUNDARY,
  unknown: UNKNOWN,
  encode(text: string): number[] {
    if (typeof text !== 'string') {
      throw new TypeError(`charTokenizer.encode: text must be a string, got ${typeof text}`);
    }
    const out = new Array<number>(text.length);
    for (let i = 0; i < text.length; i++) out[i] = encodeChar(text.charCodeAt(i));
    return out;
  },
  decode(ids: readonly number[], opts: { boundaryText?: string } = {}): string {
    if (!Array.isArray(ids)) {
      throw new TypeError(`charTokenizer.decode: ids must be an array of token ids`);
    }
    const boundaryText = opts?.boundaryText ?? '\n\n';
    let s = '';
    for (const [i, id] of ids.entries()) {
      if (!Number.isInteger(id) || id < 0 || id > UNKNOWN) {
        throw new RangeError(
          `charTokenizer.decode: ids[${i}] must be an integer in [0, ${UNKNOWN}], got ${String(id)}`,
        );
      }
      s +=
        id === BOUNDARY
          ? boundaryText
          : id === TAB
            ? '\t'
            : id === NEWLINE
              ? '\n'
              : id === UNKNOWN
                ? '?'
                : String.fromCharCode(32 + id - FIRST_PRINTABLE);
    }
    return s;
  },
};

/**
 * One token stream of documents: each document's ids followed by the boundary token, and the
 * stream starts with one (so every document is read from a boundary, as generation starts).
 *
 * @param docs - the documents, in order
 */
export function encodeDocuments(docs: readonly string[]): Int32Array {
  let total = 1;
  for (const d of docs) total += d.length + 1;
  const out = new Int32Array(total);
  out[0] = BOUNDARY;
  let p = 1;
  for (const d of docs) {
    for (let i = 0; i < d.length; i++) out[p++] = encodeChar(d.charCodeAt(i));
    out[p++] = BOUNDARY;
  }
  return out;
}

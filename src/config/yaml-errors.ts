// YAML syntax errors in plain words: one sentence per mistake, pointing at the line to fix, never the library's text.
import type { YAMLError } from 'yaml';

export interface SyntaxProblem {
  /** Offset in the parsed text where the mistake is. */
  offset: number;
  message: string;
  /** About the file as a whole rather than a key in it. */
  documentLevel?: boolean;
}

/**
 * Turns the YAML library's errors (duplicate keys excluded: they are described with their path elsewhere) into one
 * problem per mistake. The library often reports one mistake two or three ways; only the first per line is kept.
 */
export function describeSyntaxErrors(errors: readonly YAMLError[], text: string): SyntaxProblem[] {
  const out: SyntaxProblem[] = [];
  const seenLines = new Set<number>();
  for (let i = 0; i < errors.length; i++) {
    const err = errors[i]!;
    const next = errors[i + 1];
    let problem: SyntaxProblem;
    if (err.code === 'BLOCK_AS_IMPLICIT_KEY' && next?.code === 'MULTILINE_IMPLICIT_KEY' && next.pos[0] === err.pos[0]) {
      // A line indented deeper than the key above it: the library blames the key's value, the fix is on the next line.
      i++;
      problem = { offset: firstCharOfNextLine(text, err.pos[0]), message: 'this line is indented deeper than the key above it, so it reads as part of that value; line it up with the keys above it' };
    } else {
      problem = describeOne(err, text);
    }
    const line = lineOf(text, problem.offset);
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    out.push(problem);
    // An unclosed quote swallows the rest of the file: whatever the library says after it is an echo of this one.
    if (err.code === 'MISSING_CHAR' && problem.message.includes('quoted string')) break;
  }
  return out;
}

function describeOne(err: YAMLError, text: string): SyntaxProblem {
  const at = err.pos[0];
  const said = err.message;
  switch (err.code) {
    case 'TAB_AS_INDENT':
      return { offset: at, message: 'a tab is used for indentation; YAML indents with spaces only' };
    case 'BAD_INDENT':
      if (said.includes('end with a ]')) return { offset: opening(text, at, '[', ']'), message: 'a list opened with [ is not closed: add the ] (or indent its continuation lines more than its key)' };
      if (said.includes('end with a }')) return { offset: opening(text, at, '{', '}'), message: 'a mapping opened with { is not closed: add the } (or indent its continuation lines more than its key)' };
      if (said.includes('same column')) return { offset: firstCharOfLine(text, at), message: 'this key is not lined up with the keys above it; indent every key of one mapping by the same number of spaces' };
      return { offset: at, message: 'wrong indentation here; YAML nests by indentation, with spaces' };
    case 'MISSING_CHAR': {
      const quote = said.includes('"quote') ? '"' : said.includes("'quote") ? "'" : undefined;
      if (quote) return { offset: openingQuote(text, at, quote), message: `this quoted string is not closed: add the closing ${quote}` };
      return { offset: at, message: 'a character is missing here (a closing ], } or quote)' };
    }
    case 'BLOCK_AS_IMPLICIT_KEY':
      return { offset: at, message: 'a mapping cannot start on the same line as its key (as in "a: b: c"); put it on its own indented line, or quote the value if the colon belongs to it' };
    case 'MULTILINE_IMPLICIT_KEY':
      return { offset: at, message: 'a key must fit on one line; check the indentation of the line below' };
    case 'BAD_DQ_ESCAPE':
      return { offset: at, message: 'invalid escape in a double-quoted string: write \\\\ for a backslash, or use single quotes' };
    case 'BAD_SCALAR_START': {
      const ch = text[at] ?? '';
      return { offset: at, message: `a value cannot start with "${ch}" (reserved in YAML); put the value in quotes` };
    }
    case 'MULTIPLE_DOCS':
      return { offset: at, message: 'the file holds more than one YAML document (a --- line); a config is a single document', documentLevel: true };
    case 'BLOCK_IN_FLOW':
      return { offset: at, message: 'an indented block cannot appear inside [ ] or { }' };
    case 'KEY_OVER_1024_CHARS':
      return { offset: at, message: 'a key longer than 1024 characters' };
    case 'BAD_ALIAS':
    case 'ALIAS_PROPS':
      return { offset: at, message: 'invalid alias (*name): it must name an anchor (&name) defined before it' };
    case 'MULTIPLE_ANCHORS':
    case 'MULTIPLE_TAGS':
    case 'BAD_PROP_ORDER':
      return { offset: at, message: 'a value may have one anchor (&name) and one tag (!tag), anchor first' };
    case 'UNEXPECTED_TOKEN':
      return { offset: at, message: 'unexpected text here; check the indentation and the characters : - [ ] { } , on this line' };
    default:
      return { offset: at, message: 'this is not valid YAML; check the indentation and quoting of this line' };
  }
}

export function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function firstCharOfNextLine(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  if (nl < 0) return offset;
  let i = nl + 1;
  while (text[i] === ' ' || text[i] === '\t') i++;
  return i < text.length && text[i] !== '\n' ? i : offset;
}

function firstCharOfLine(text: string, offset: number): number {
  let i = text.lastIndexOf('\n', offset - 1) + 1;
  while (text[i] === ' ') i++;
  return i;
}

/** The unclosed bracket: scanning back from where the library gave up, the first [ (or {) not closed after it. */
function opening(text: string, end: number, open: string, close: string): number {
  let depth = 0;
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] === close) depth++;
    else if (text[i] === open && depth-- === 0) return i;
  }
  return end;
}

/** The opening quote of an unclosed string: the last unescaped quote before where the library gave up. */
function openingQuote(text: string, end: number, quote: string): number {
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] !== quote) continue;
    if (quote === '"' && text[i - 1] === '\\') continue;
    if (quote === "'" && (text[i - 1] === "'" || text[i + 1] === "'")) continue;
    return i;
  }
  return end;
}
